"""Stage 4, distill_topk: distil each top-k candidate longer on the proxy set and rank them by reward."""
import sys

from kdnas.cli import run_stage, stage_parser
from kdnas.pipeline.distill_topk import distill_topk_stage

parser = stage_parser("distill_topk", __doc__)
parser.add_argument("--teacher", required=True, help="input: fine-tuned teacher (HF folder)")
parser.add_argument("--proxy", required=True, help="input: proxy folder")
parser.add_argument("--topk", required=True, help="input: top-k trials from the search (JSON)")
parser.add_argument("--ranking", required=True, help="output: ranked candidates (JSON)")

if __name__ == "__main__":
    sys.exit(run_stage("distill_topk", distill_topk_stage, parser))
