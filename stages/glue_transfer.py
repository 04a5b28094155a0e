"""GLUE fan-out, glue_transfer: one task's transfer rows with its teacher's logits cached once."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue_transfer", __doc__)
parser.add_argument("--task", required=True, help="a task of glue.tasks")
parser.add_argument("--teacher", required=True, help="input: the task's fine-tuned teacher (HF folder)")
parser.add_argument("--out", required=True, help="output: transfer rows with teacher logits (parquet)")

if __name__ == "__main__":
    sys.exit(run_stage("glue_transfer", "kdnas.pipeline.glue_transfer:glue_transfer_stage", parser, reads_data=True))
