"""Stage 3, search: propose student architectures, distil each briefly on the proxy set, reward accuracy
and latency; log every trial and write them ranked by reward."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("search", __doc__)
parser.add_argument("--teacher", required=True, help="input: fine-tuned teacher (HF folder)")
parser.add_argument("--proxies", required=True, help="input: the folder of every task's proxy folder (<task>/, "
                    "from the proxy and glue_proxy stages)")
parser.add_argument("--glue", required=True, help="the GLUE fan-out's folder, an input when search.tasks is all: "
                    "its tasks' teachers (<task>/teacher/model)")
parser.add_argument("--latency-predictor", required=True,
                    help="input: latency predictor from latency_profile (used when search.latency.mode is predicted)")
parser.add_argument("--trials", required=True, help="output: trial log (JSONL, resumable)")
parser.add_argument("--trials-csv", required=True, help="output: trial table for plots (CSV)")
parser.add_argument("--ranked", required=True, help="output: every trial, best reward first (JSON)")
parser.add_argument("--pareto", required=True, help="output: non-dominated trials, score vs latency (CSV)")
parser.add_argument("--hypervolume", required=True, help="output: hypervolume and best reward after each trial (CSV)")
parser.add_argument("--metrics", required=True, help="output: search summary metrics (JSON)")

if __name__ == "__main__":
    sys.exit(run_stage("search", "kdnas.pipeline.search:search_stage", parser))
