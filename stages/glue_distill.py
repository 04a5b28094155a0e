"""GLUE fan-out, glue_distill: the searched student distilled from one task's teacher on its transfer set;
export a plain Hugging Face model."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue_distill", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("glue_distill", parser))
