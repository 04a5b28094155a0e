"""Stage 6, distill_full: pick the winner (best reward with measured latency) and distil it on the
transfer set; export a plain Hugging Face model."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("distill_full", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("distill_full", parser))
