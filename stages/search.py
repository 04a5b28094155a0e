"""Stage 3, search: propose student architectures, distil each briefly on the proxy set, reward accuracy
and latency; log every trial and write them ranked by reward."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("search", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("search", parser))
