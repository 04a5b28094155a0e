"""GLUE fan-out, glue_teacher: fine-tune the teacher on one of glue.tasks (the teacher stage with that task's
params); save it and its dev metrics."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue_teacher", __doc__)
parser.add_argument("--task", required=True, help="a task of glue.tasks")
parser.add_argument("--model", required=True, help="output: fine-tuned teacher (HF folder)")
parser.add_argument("--metrics", required=True, help="output: dev metrics (JSON)")

if __name__ == "__main__":
    sys.exit(run_stage("glue_teacher", "kdnas.pipeline.glue_teacher:glue_teacher_stage", parser, reads_data=True))
