"""GLUE fan-out, glue_params: one task's resolved params (its glue.tasks overrides laid over the search run's
blocks), which its other stages track key by key."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue_params", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("glue_params", parser))
