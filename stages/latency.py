"""Stage 5, latency: benchmark teacher and ranked candidates interleaved (eval + inference mode, fixed
threads, warm-up, median of repeats) at every configured batch size."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("latency", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("latency", parser))
