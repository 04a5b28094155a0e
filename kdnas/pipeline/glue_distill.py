"""GLUE fan-out, per task: the searched architecture distilled from that task's teacher.

The winner is picked exactly as for the search task (same ranking, same measured latency, same reward) and
checked against the search task's summary before any work, so that every task gets the architecture the
report names.
"""
from __future__ import annotations

from kdnas.errors import KdnasError
from kdnas.io import read_json
from kdnas.pipeline.distill_full import distill_winner
from kdnas.pipeline.manifest import MANIFEST
from kdnas.task_params import task_params


def glue_distill_stage(paths, params: dict) -> str:
    searched = read_json(paths.searched)["winner"]["arch"]
    try:
        # gradient importance is measured on the search task's teacher; another task's teacher inherits by
        # magnitude
        out = distill_winner(paths, task_params(params, paths.task), importance=None,
                             tracked=MANIFEST["glue_distill"].params, expected=searched)
    except KdnasError as error:
        raise KdnasError(f"{paths.task}: {error}") from None
    return f"{paths.task}: " + out
