"""Export stage: every task's student as a shippable folder (safetensors, tokenizer, config with label
names, a model card README.md, model.onnx checked against PyTorch)."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("export", __doc__)

if __name__ == "__main__":
    sys.exit(run_stage("export", parser))
