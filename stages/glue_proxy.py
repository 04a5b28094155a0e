"""GLUE fan-out, glue_proxy: one task's proxy-train and proxy-dev sets with its teacher's logits cached (the
proxy stage with that task's params), for the search's multi-task score (search.tasks: all)."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue_proxy", __doc__)
parser.add_argument("--task", required=True, help="a task of glue.tasks")
parser.add_argument("--teacher", required=True, help="input: the task's fine-tuned teacher (HF folder)")
parser.add_argument("--out", required=True, help="output: the task's proxy folder (as the proxy stage writes it)")

if __name__ == "__main__":
    sys.exit(run_stage("glue_proxy", "kdnas.pipeline.glue_proxy:glue_proxy_stage", parser, reads_data=True))
