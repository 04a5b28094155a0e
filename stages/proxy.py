"""Stage 2, proxy: a label-stratified proxy-train and a disjoint proxy-dev set, with cached teacher logits
(and teacher states for intermediate losses within proxy.state_cache_mb, and gradient importance scores)."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("proxy", __doc__)
parser.add_argument("--teacher", required=True, help="input: fine-tuned teacher (HF folder)")
parser.add_argument("--out", required=True, help="output: folder with train.parquet, dev.parquet, states.json "
                    "(and train.states.safetensors, importance.safetensors when needed)")

if __name__ == "__main__":
    sys.exit(run_stage("proxy", "kdnas.pipeline.proxy:proxy_stage", parser, reads_data=True))
