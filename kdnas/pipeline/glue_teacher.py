"""GLUE fan-out, per task: the teacher stage run with one task's params."""
from __future__ import annotations

from kdnas.pipeline.teacher import teacher_stage
from kdnas.task_params import task_params


def glue_teacher_stage(paths, params: dict) -> str:
    return f"{paths.task}: " + teacher_stage(paths, task_params(params, paths.task))
