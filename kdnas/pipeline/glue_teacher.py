"""GLUE fan-out, per task: the teacher stage run with one task's params."""
from __future__ import annotations

from kdnas.pipeline.teacher import teacher_stage
from kdnas.task_params import task_params


def glue_teacher_stage(args, params: dict) -> str:
    return f"{args.task}: " + teacher_stage(args, task_params(params, args.task))
