"""GLUE fan-out, glue_distill: the searched student distilled from one task's teacher on its transfer set;
export a plain Hugging Face model."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue_distill", __doc__)
parser.add_argument("--task", required=True, help="a task of glue.tasks")
parser.add_argument("--teacher", required=True, help="input: the task's fine-tuned teacher (HF folder)")
parser.add_argument("--transfer", required=True, help="input: the task's transfer set with teacher logits (parquet)")
parser.add_argument("--ranking", required=True, help="input: ranked candidates of the search (JSON)")
parser.add_argument("--latency", required=True, help="input: latency table (CSV)")
parser.add_argument("--searched", required=True, help="input: the search task's student summary (JSON)")
parser.add_argument("--model", required=True, help="output: distilled student (HF folder)")
parser.add_argument("--summary", required=True, help="output: winner and training history (JSON)")

if __name__ == "__main__":
    sys.exit(run_stage("glue_distill", "kdnas.pipeline.glue_distill:glue_distill_stage", parser))
