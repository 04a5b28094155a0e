"""Export stage: every task's student as a shippable folder (safetensors, tokenizer, config with label
names, a model card README.md, model.onnx checked against PyTorch)."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("export", __doc__)
parser.add_argument("--student", required=True, help="input: the search task's student (HF folder)")
parser.add_argument("--summary", required=True, help="input: the search task's student summary (JSON)")
parser.add_argument("--search-metrics", required=True, help="input: the search task's evaluate metrics (JSON)")
parser.add_argument("--teacher-metrics", required=True, help="input: the search task's teacher metrics (JSON)")
parser.add_argument("--glue-results", required=True, help="input: folder of <task>/student/{model,summary.json}")
parser.add_argument("--glue-metrics", required=True, help="input: folder of <task>/{evaluate,teacher}.json")
parser.add_argument("--latency", required=True, help="input: latency table (CSV)")
parser.add_argument("--out", required=True, help="output: folder of <task>/ exports")
parser.add_argument("--metrics", required=True, help="output: ONNX parity per task (JSON)")

if __name__ == "__main__":
    sys.exit(run_stage("export", "kdnas.pipeline.export:export_stage", parser))
