"""Stage transfer: the rows the student is distilled on (the teacher's training rows and more), with the
teacher's logits cached once."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("transfer", __doc__)
parser.add_argument("--teacher", required=True, help="input: fine-tuned teacher (HF folder)")
parser.add_argument("--out", required=True, help="output: transfer rows with teacher logits (parquet)")

if __name__ == "__main__":
    sys.exit(run_stage("transfer", "kdnas.pipeline.transfer:transfer_stage", parser, reads_data=True))
