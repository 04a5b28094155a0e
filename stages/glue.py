"""GLUE gather stage, glue: the search task and every task of glue.tasks in one GLUE table (teacher vs
student, GLUE score, share of the teacher, speed-ups) as DVC metrics and plots, plus the report."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("glue", parser))
