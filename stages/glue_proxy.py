"""GLUE fan-out, glue_proxy: one task's proxy-train and proxy-dev sets with its teacher's logits cached (the
proxy stage with that task's params), for the search's multi-task score (search.tasks: all)."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue_proxy", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("glue_proxy", parser))
