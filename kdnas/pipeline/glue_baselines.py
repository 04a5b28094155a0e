"""GLUE fan-out, per task: the hand-crafted students distilled from that task's teacher (see
:mod:`kdnas.pipeline.baselines`)."""
from __future__ import annotations

from kdnas.pipeline.baselines import distill_baselines
from kdnas.pipeline.manifest import MANIFEST
from kdnas.task_params import task_params


def glue_baselines_stage(paths, params: dict) -> str:
    """Inheriting by magnitude, as the task's searched student does (see glue_distill)."""
    return f"{paths.task}: " + distill_baselines(paths, task_params(params, paths.task), importance=None,
                                                   tracked=MANIFEST["glue_baselines"].params)
