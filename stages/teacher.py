"""Stage 1, teacher: fine-tune the pretrained encoder on the task; save it and its dev metrics."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("teacher", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("teacher", parser))
