"""GLUE fan-out, glue_teacher: fine-tune the teacher on one of glue.tasks (the teacher stage with that task's
params); save it and its dev metrics."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue_teacher", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("glue_teacher", parser))
