"""The GLUE table: each task's official score, the GLUE score, and the student's share of the teacher.

GLUE scores a task by the unweighted mean of its official metrics (F1 and accuracy for MRPC and QQP,
Pearson and Spearman for STS-B, matched and mismatched accuracy for MNLI, Matthews for CoLA, accuracy
otherwise); the GLUE score is the mean over tasks, often also given without CoLA. A custom search task
(``custom_tasks``) counts with its main metric, so the mean is then a mean over the run's tasks, not GLUE's.
"""
from __future__ import annotations

import math

from kdnas.data.tasks import Task, get_task
from kdnas.evaluation.metrics import glue_score, percent_of_teacher


def official_metrics(task: str | Task) -> tuple[str, ...]:
    """GLUE's official metrics of a task (by name for GLUE's); a custom task's main metric."""
    return (get_task(task) if isinstance(task, str) else task).official


def task_score(task: str | Task, metrics: dict[str, float]) -> float:
    """GLUE's score for one task: the mean of its official metrics (all must be present)."""
    names = official_metrics(task)
    return sum(metrics[name] for name in names) / len(names)


def glue_table(results: dict[str, dict], tasks: dict[str, Task] | None = None) -> dict:
    """Teacher vs student over tasks.

    Args:
        results: task -> {"teacher": metrics, "student": metrics}, metrics as GLUE names them.
        tasks: task name -> task, for custom tasks (GLUE names are looked up when missing here).

    Returns:
        {"tasks": {task: {"teacher": score, "student": score, "percent_of_teacher": ..}},
         "teacher"/"student": GLUE score, "teacher_without_cola"/"student_without_cola",
         "percent_of_teacher": student GLUE score over the teacher's, "mean_percent_of_teacher": mean of
         the per-task shares (tasks whose teacher scores 0 or less have none)}.
    """
    rows = {}
    tasks = tasks or {}
    for task, pair in results.items():
        scored = tasks.get(task, task)
        teacher, student = task_score(scored, pair["teacher"]), task_score(scored, pair["student"])
        # a share of a teacher at or below chance-level 0 (Matthews, correlations) means nothing: none
        share = percent_of_teacher(student, teacher) if teacher > 0 else float("nan")
        rows[task] = {"teacher": teacher, "student": student, "percent_of_teacher": share}
    out = {"tasks": rows}
    for model in ("teacher", "student"):
        scores = {task: row[model] for task, row in rows.items()}
        out[model] = glue_score(scores)
        out[f"{model}_without_cola"] = glue_score(scores, exclude=("cola",))
    out["percent_of_teacher"] = percent_of_teacher(out["student"], out["teacher"])
    out["percent_of_teacher_without_cola"] = percent_of_teacher(out["student_without_cola"], out["teacher_without_cola"])
    # tasks without a share (teacher at or below 0) are left out
    shares = [row["percent_of_teacher"] for row in rows.values() if not math.isnan(row["percent_of_teacher"])]
    out["mean_percent_of_teacher"] = sum(shares) / len(shares) if shares else float("nan")
    return out
