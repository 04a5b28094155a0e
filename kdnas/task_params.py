"""Per-task params for the GLUE fan-out: the search run's params with one task's overrides laid over them.

The search runs once, on ``task``; every task in ``glue.tasks`` gets its own teacher and the searched
student, trained with the same blocks as the search task unless ``glue.tasks.<task>`` overrides keys
of ``data``, ``teacher``, ``proxy`` (the multi-task search's proxy sets), ``transfer``, ``distill_full``, ``evaluate`` or ``export`` (one level deep: a list such
as ``distill_full.losses`` is replaced whole).
"""
from __future__ import annotations

import copy

from kdnas.errors import KdnasError
from kdnas.params_audit import keep_audit

OVERRIDABLE = ("data", "teacher", "proxy", "transfer", "distill_full", "evaluate", "export")


def glue_tasks(params: dict) -> list[str]:
    """The fanned-out tasks, in params order (the search task is not among them)."""
    return list((params.get("glue") or {}).get("tasks") or {})


def search_tasks(params: dict) -> list[str]:
    """The tasks the search scores candidates on, the search task first."""
    if params["search"].get("tasks", "search") == "all":
        return [params["task"], *glue_tasks(params)]
    return [params["task"]]


def is_multi_task(params: dict) -> bool:
    return len(search_tasks(params)) > 1


def task_runs(params: dict) -> dict[str, dict]:
    """Every task's params, the search task's (``params`` itself) first, then each fanned-out task's."""
    return {params["task"]: params, **{task: task_params(params, task) for task in glue_tasks(params)}}


def task_params(params: dict, task: str) -> dict:
    """The params a per-task stage runs with: ``task`` set to ``task``, its overrides applied."""
    tasks = (params.get("glue") or {}).get("tasks") or {}
    if task not in tasks:
        raise KdnasError(f"task {task!r} is not in glue.tasks (configured: {', '.join(tasks) or 'none'})")
    out = copy.deepcopy({key: value for key, value in params.items() if key != "glue"})
    out["task"] = task
    for block, values in (tasks[task] or {}).items():
        out[block] = {**out[block], **copy.deepcopy(values)}
    return keep_audit(params, out)
