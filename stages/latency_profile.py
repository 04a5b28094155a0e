"""Stage latency_profile: time a sample of the search space on this hardware and fit the latency predictor
the search uses (validated on held-out architectures)."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("latency_profile", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("latency_profile", parser))
