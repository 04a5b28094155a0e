"""GLUE fan-out, glue_evaluate: GLUE dev metrics of one task's teacher, of the searched student and of
the hand-crafted students, and the searched student's margin over them at equal latency."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue_evaluate", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("glue_evaluate", parser))
