"""GLUE gather stage, glue: the search task and every task of glue.tasks in one GLUE table (teacher vs
student, GLUE score, share of the teacher, speed-ups) as DVC metrics and plots, plus the report."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue", __doc__)
parser.add_argument("--search-metrics", required=True, help="input: the search task's evaluate metrics (JSON)")
parser.add_argument("--glue-metrics", required=True, help="input: folder of <task>/evaluate.json for glue.tasks")
parser.add_argument("--summary", required=True, help="input: the search task's student summary (JSON)")
parser.add_argument("--latency", required=True, help="input: latency table (CSV)")
parser.add_argument("--trials", required=True, help="input: search trial table (CSV)")
parser.add_argument("--metrics", required=True, help="output: the GLUE table (JSON)")
parser.add_argument("--plot", required=True, help="output: task scores of teacher and student (CSV)")
parser.add_argument("--report", required=True, help="output: report folder (README.md + PNGs)")

if __name__ == "__main__":
    sys.exit(run_stage("glue", "kdnas.pipeline.glue:glue_stage", parser))
