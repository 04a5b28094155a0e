"""Stage transfer: the rows the student is distilled on (the teacher's training rows and more), with the
teacher's logits cached once."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("transfer", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("transfer", parser))
