"""Stage 6, distill_full: pick the winner (best reward with measured latency) and distil it on the
transfer set; export a plain Hugging Face model."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("distill_full", __doc__)
parser.add_argument("--teacher", required=True, help="input: fine-tuned teacher (HF folder)")
parser.add_argument("--transfer", required=True, help="input: transfer set with teacher logits (parquet)")
parser.add_argument("--proxy", required=True, help="input: proxy folder (importance scores when space.importance is gradient)")
parser.add_argument("--ranking", required=True, help="input: ranked candidates (JSON)")
parser.add_argument("--latency", required=True, help="input: latency table (CSV)")
parser.add_argument("--model", required=True, help="output: distilled student (HF folder)")
parser.add_argument("--summary", required=True, help="output: winner and training history (JSON)")

if __name__ == "__main__":
    sys.exit(run_stage("distill_full", "kdnas.pipeline.distill_full:distill_full_stage", parser))
