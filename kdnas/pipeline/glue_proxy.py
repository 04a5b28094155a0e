"""GLUE fan-out, per task: the proxy stage run with one task's params (its teacher, data and proxy sizes)."""
from __future__ import annotations

from kdnas.pipeline.proxy import proxy_stage
from kdnas.task_params import task_params


def glue_proxy_stage(paths, params: dict) -> str:
    return f"{paths.task}: " + proxy_stage(paths, task_params(params, paths.task))
