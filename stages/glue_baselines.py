"""GLUE fan-out, glue_baselines: one task's hand-crafted students, distilled from its teacher on its transfer
set with the recipe its searched student gets."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue_baselines", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("glue_baselines", parser))
