"""GLUE fan-out, glue_transfer: one task's transfer rows with its teacher's logits cached once."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue_transfer", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("glue_transfer", parser))
