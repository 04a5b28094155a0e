"""GLUE fan-out, per task: the transfer rows with that task's teacher's logits cached once."""
from __future__ import annotations

from kdnas.pipeline.transfer import transfer_stage
from kdnas.task_params import task_params


def glue_transfer_stage(paths, params: dict) -> str:
    return f"{paths.task}: " + transfer_stage(paths, task_params(params, paths.task))
