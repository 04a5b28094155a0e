"""Stage 7, evaluate: GLUE dev metrics of teacher and student, share of the teacher's score, parameters
and speed-ups, as DVC metrics and plots (the glue stage writes the report)."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("evaluate", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("evaluate", parser))
