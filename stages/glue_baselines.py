"""GLUE fan-out, glue_baselines: one task's hand-crafted students, distilled from its teacher on its transfer
set with the recipe its searched student gets."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue_baselines", __doc__)
parser.add_argument("--task", required=True, help="a task of glue.tasks")
parser.add_argument("--teacher", required=True, help="input: the task's fine-tuned teacher (HF folder)")
parser.add_argument("--transfer", required=True, help="input: the task's transfer set with teacher logits (parquet)")
parser.add_argument("--models", required=True, help="output: one HF folder per hand-crafted student, named by architecture")
parser.add_argument("--summary", required=True, help="output: layers kept, parameters and training history (JSON)")

if __name__ == "__main__":
    sys.exit(run_stage("glue_baselines", "kdnas.pipeline.glue_baselines:glue_baselines_stage", parser))
