"""Stage 1, teacher: fine-tune the pretrained encoder on the task; save it and its dev metrics."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("teacher", __doc__)
parser.add_argument("--model", required=True, help="output: fine-tuned teacher (HF folder)")
parser.add_argument("--metrics", required=True, help="output: dev metrics (JSON)")

if __name__ == "__main__":
    sys.exit(run_stage("teacher", "kdnas.pipeline.teacher:teacher_stage", parser, reads_data=True))
