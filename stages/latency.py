"""Stage 5, latency: benchmark teacher and ranked candidates interleaved (eval + inference mode, fixed
threads, warm-up, median of repeats) at every configured batch size."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("latency", __doc__)
parser.add_argument("--teacher", required=True, help="input: fine-tuned teacher (HF folder)")
parser.add_argument("--ranking", required=True, help="input: ranked candidates (JSON)")
parser.add_argument("--table", required=True, help="output: one row per model and batch size (CSV)")
parser.add_argument("--metrics", required=True, help="output: speed-ups and hardware (JSON)")

if __name__ == "__main__":
    sys.exit(run_stage("latency", "kdnas.pipeline.latency:latency_stage", parser))
