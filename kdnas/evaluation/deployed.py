"""The student in each form it ships as: eager PyTorch, the fp32 ONNX graph and the int8 graph under ONNX
Runtime, each with its dev GLUE score and its measured latency and speed-up over the fp32 teacher in eager
PyTorch (what users replace). Scores come from the evaluate stages (eager) and from export, which scores
both ONNX forms through ONNX Runtime on the same dev rows; latencies from the latency stage."""
from __future__ import annotations

from kdnas.data.tasks import Task
from kdnas.evaluation.glue_table import task_score
from kdnas.evaluation.metrics import glue_score, percent_of_teacher
from kdnas.latency.table import EAGER, LatencyTable

ONNX_FORMS = {"onnxruntime": "fp32", "onnxruntime-int8": "int8"}  # latency backend -> export's scores


def deployed_scores(table: dict, export: dict, tasks: dict[str, Task]) -> dict[str, float | None]:
    """The student's GLUE score per runtime: eager from the GLUE table, the ONNX forms from export's metrics
    (None where a task lacks them: export.int8 none, or an official metric export does not score, such as
    MNLI's mismatched accuracy)."""
    scores: dict[str, float | None] = {EAGER: table["student"]}
    for backend, form in ONNX_FORMS.items():
        per_task = {}
        for task in table["tasks"]:
            metrics = ((export.get(task) or {}).get("int8") or {}).get(form)
            try:
                per_task[task] = task_score(tasks.get(task, task), metrics or {})
            except KeyError:
                break
        scores[backend] = glue_score(per_task) if len(per_task) == len(table["tasks"]) else None
    return scores


def deployed_table(table: dict, export: dict, tasks: dict[str, Task], latency: LatencyTable, arch: str) -> list[dict]:
    """One row per runtime and batch size the latency stage timed: the student's dev GLUE score and its share
    of the teachers', its median latency and its speed-up over the eager fp32 teacher."""
    scores = deployed_scores(table, export, tasks)
    rows = []
    for timed in latency.versus_teacher(arch):
        score = scores.get(timed["backend"])
        rows.append({"runtime": timed["backend"], "batch_size": timed["batch_size"], "glue_score": score,
                     "percent_of_teacher": None if score is None else percent_of_teacher(score, table["teacher"]),
                     "student_ms": timed["student_ms"],
                     "speedup_vs_eager_teacher": timed["speedup_vs_eager"] or timed["speedup"]})
    return rows
