"""GLUE fan-out, per task: the params the task's stages run with, written to a file DVC tracks key by key.

A task's entry in ``glue.tasks`` overrides some blocks and not others (``stsb`` may set ``distill_full`` and
leave ``teacher`` to the search run's), and DVC can track only a key that exists, so a stage that tracked the
whole entry reran whenever any of it changed: a new distillation setting retrained the task's teacher. This
stage resolves the task's params (:func:`kdnas.task_params.task_params`) and writes the keys the per-task
stages declare (``kdnas.pipeline.manifest.TASK_PARAMS_KEYS``); each of those stages tracks its own keys in
this file, so it reruns only when their resolved values change. Snakemake's rules resolve the same values in
memory (``workflow/rules/common.smk``), and need no file.
"""
from __future__ import annotations

import yaml

from kdnas.io import write_text
from kdnas.params_keys import value_at
from kdnas.pipeline.manifest import TASK_PARAMS_KEYS
from kdnas.task_params import task_params


def at_keys(params: dict, keys) -> dict:
    """The nested dict of ``params`` holding only ``keys`` (a block named whole keeps everything inside it):
    ``at_keys(p, ["seed", "data.max_length"]) == {"seed": 0, "data": {"max_length": 64}}``."""
    out: dict = {}
    for key in sorted(keys, key=lambda k: k.count(".")):  # blocks before the keys inside them
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value_at(params, key)
    return out


def glue_params_stage(paths, params: dict) -> str:
    resolved = at_keys(task_params(params, paths.task), TASK_PARAMS_KEYS)
    header = (f"# {paths.task}'s params as its stages run them: params.yaml's blocks with glue.tasks.{paths.task} "
              "laid over them.\n# Written by the glue_params stage: edit params.yaml, not this file.\n")
    write_text(paths.out, header + yaml.safe_dump(resolved, sort_keys=False))
    return f"{paths.task}: wrote {paths.out} ({len(TASK_PARAMS_KEYS)} keys)"
