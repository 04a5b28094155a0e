"""Stage latency_profile: time a sample of the search space on this hardware and fit the latency predictor
the search uses (validated on held-out architectures)."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("latency_profile", __doc__)
parser.add_argument("--teacher", required=True, help="input: fine-tuned teacher (HF folder; gives the model family)")
parser.add_argument("--predictor", required=True, help="output: fitted predictor with its measurements (JSON)")
parser.add_argument("--metrics", required=True, help="output: held-out Spearman and MAPE (JSON)")

if __name__ == "__main__":
    sys.exit(run_stage("latency_profile", "kdnas.pipeline.latency_profile:latency_profile_stage", parser))
