"""Stage 7, evaluate: GLUE dev metrics of teacher and student, share of the teacher's score, parameters
and speed-ups, as DVC metrics and plots (the glue stage writes the report)."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("evaluate", __doc__)
parser.add_argument("--teacher", required=True, help="input: fine-tuned teacher (HF folder)")
parser.add_argument("--student", required=True, help="input: distilled student (HF folder)")
parser.add_argument("--baselines", required=True, help="input: the hand-crafted students (a folder of HF folders)")
parser.add_argument("--summary", required=True, help="input: distill_full summary (JSON)")
parser.add_argument("--latency", required=True, help="input: latency table (CSV)")
parser.add_argument("--metrics", required=True, help="output: metrics (JSON)")
parser.add_argument("--predictions", required=True, help="output: dev predictions of teacher, student and hand-crafted students (CSV)")
parser.add_argument("--comparison", required=True, help="output: teacher vs student table for plots (CSV)")

if __name__ == "__main__":
    sys.exit(run_stage("evaluate", "kdnas.pipeline.evaluate:evaluate_stage", parser, reads_data=True))
