"""Stage baselines: the hand-crafted students (the teacher's layers dropped uniformly at full width, and the
same depths with the FFN trimmed), distilled with the searched student's recipe on the same transfer rows, so
evaluate can compare the searched student with them at equal latency."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("baselines", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("baselines", parser))
