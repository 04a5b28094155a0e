"""GLUE fan-out, glue_evaluate: GLUE dev metrics of one task's teacher, of the searched student and of
the hand-crafted students, and the searched student's margin over them at equal latency."""
import sys

from kdnas.cli import run_stage, stage_parser

parser = stage_parser("glue_evaluate", __doc__)
parser.add_argument("--task", required=True, help="a task of glue.tasks")
parser.add_argument("--teacher", required=True, help="input: the task's teacher (HF folder)")
parser.add_argument("--student", required=True, help="input: the task's student (HF folder)")
parser.add_argument("--baselines", required=True, help="input: the task's hand-crafted students (a folder of HF folders)")
parser.add_argument("--summary", required=True, help="input: the task's student summary (JSON)")
parser.add_argument("--latency", required=True, help="input: latency table (CSV)")
parser.add_argument("--metrics", required=True, help="output: teacher and student dev metrics (JSON)")
parser.add_argument("--predictions", required=True, help="output: dev predictions of teacher, student and hand-crafted students (CSV)")

if __name__ == "__main__":
    sys.exit(run_stage("glue_evaluate", "kdnas.pipeline.glue_evaluate:glue_evaluate_stage", parser, reads_data=True))
