"""The GLUE table: each task's official score, the GLUE score, and the student's share of the teacher.

GLUE scores a task by the unweighted mean of its official metrics (F1 and accuracy for MRPC and QQP,
Pearson and Spearman for STS-B, matched and mismatched accuracy for MNLI, Matthews for CoLA, accuracy
otherwise); the GLUE score is the mean over tasks, often also given without CoLA.
"""
from __future__ import annotations

import math

from kdnas.metrics import glue_score, percent_of_teacher

OFFICIAL = {"cola": ("mcc",), "mrpc": ("f1", "accuracy"), "qqp": ("f1", "accuracy"),
            "stsb": ("pearson", "spearman"), "mnli": ("accuracy", "accuracy_mm")}


def official_metrics(task: str) -> tuple[str, ...]:
    return OFFICIAL.get(task, ("accuracy",))


def task_score(task: str, metrics: dict[str, float]) -> float:
    """GLUE's score for one task: the mean of its official metrics (all must be present)."""
    names = official_metrics(task)
    return sum(metrics[name] for name in names) / len(names)


def glue_table(results: dict[str, dict]) -> dict:
    """Teacher vs student over tasks.

    Args:
        results: task -> {"teacher": metrics, "student": metrics}, metrics as GLUE names them.

    Returns:
        {"tasks": {task: {"teacher": score, "student": score, "percent_of_teacher": ..}},
         "teacher"/"student": GLUE score, "teacher_without_cola"/"student_without_cola",
         "percent_of_teacher": student GLUE score over the teacher's, "mean_percent_of_teacher": mean of
         the per-task shares (tasks whose teacher scores 0 or less have none)}.
    """
    tasks = {}
    for task, pair in results.items():
        teacher, student = task_score(task, pair["teacher"]), task_score(task, pair["student"])
        # a share of a teacher at or below chance-level 0 (Matthews, correlations) means nothing: none
        share = percent_of_teacher(student, teacher) if teacher > 0 else float("nan")
        tasks[task] = {"teacher": teacher, "student": student, "percent_of_teacher": share}
    out = {"tasks": tasks}
    for model in ("teacher", "student"):
        scores = {task: row[model] for task, row in tasks.items()}
        out[model] = glue_score(scores)
        out[f"{model}_without_cola"] = glue_score(scores, exclude=("cola",))
    out["percent_of_teacher"] = percent_of_teacher(out["student"], out["teacher"])
    out["percent_of_teacher_without_cola"] = percent_of_teacher(out["student_without_cola"], out["teacher_without_cola"])
    # tasks without a share (teacher at or below 0) are left out
    shares = [row["percent_of_teacher"] for row in tasks.values() if not math.isnan(row["percent_of_teacher"])]
    out["mean_percent_of_teacher"] = sum(shares) / len(shares) if shares else float("nan")
    return out
