"""Stage baselines: the hand-crafted students (the teacher's layers dropped uniformly at full width, and the
same depths with the FFN trimmed), distilled with the searched student's recipe on the same transfer rows, so
evaluate can compare the searched student with them at equal latency."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("baselines", __doc__)
parser.add_argument("--teacher", required=True, help="input: fine-tuned teacher (HF folder)")
parser.add_argument("--transfer", required=True, help="input: transfer set with teacher logits (parquet)")
parser.add_argument("--proxy", required=True, help="input: proxy folder (importance scores when space.importance is gradient)")
parser.add_argument("--models", required=True, help="output: one HF folder per hand-crafted student, named by architecture")
parser.add_argument("--summary", required=True, help="output: layers kept, parameters and training history (JSON)")

if __name__ == "__main__":
    sys.exit(run_stage("baselines", "kdnas.pipeline.baselines:baselines_stage", parser))
