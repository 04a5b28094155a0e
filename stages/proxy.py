"""Stage 2, proxy: a label-stratified proxy-train and a disjoint proxy-dev set, with cached teacher logits
(and teacher states for intermediate losses within proxy.state_cache_mb, and gradient importance scores)."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("proxy", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("proxy", parser))
