# Shared setup: read params.yaml with the parser the stages use (kdnas.params: YAML as DVC reads it, duplicate
# keys refused) and check it against workflow/schemas/params.schema.yaml before any job starts, with the same
# one-line errors (exit status 2) the stage CLIs give. Params come from params.yaml only: the stages read it.
import json
import sys
from pathlib import Path

from kdnas.data.loading import task_data_files
from kdnas.errors import KdnasError
from kdnas.params import load_params
from kdnas.params_keys import value_at
from kdnas.pipeline.code_deps import stage_code_deps
from kdnas.pipeline.manifest import MANIFEST
from kdnas.task_params import glue_tasks, search_tasks, task_params

PARAMS_FILE = "params.yaml"

try:
    config.update(load_params(PARAMS_FILE))
except KdnasError as error:
    print(f"snakemake: error: {error}", file=sys.stderr)
    sys.exit(2)
LOGS = "logs"


def block(*keys, params=None):
    """The params a rule depends on (in ``params``, default the config); a change in them (and only them) reruns
    the rule."""
    return {key: value_at(config if params is None else params, key) for key in keys}


def stage_code(stage):
    """The kdnas source files ``stage`` runs (the manifest's code deps): inputs of its rule, so a library edit
    reruns the same jobs as under DVC."""
    return stage_code_deps(stage)


def stage_params(stage):
    """The params the manifest declares for ``stage``, valued as DVC values them: a per-task job's keys in its
    task's resolved params (the search run's blocks with the task's glue.tasks overrides laid over them, the file
    glue_params writes for DVC), so a change to a task's entry reruns only the jobs whose keys it changes."""
    entry = MANIFEST[stage]
    if not entry.per_task:
        return block(*entry.params)
    if entry.resolves_task_params:  # glue_params itself reads params.yaml, its task's entry included
        return lambda wildcards: block(*(key.replace("${key}", wildcards.task) for key in entry.params))
    return lambda wildcards: block(*entry.params, params=task_params(config, wildcards.task))


def search_task_data(*splits):
    """The search task's local data files (all splits when none are named); none for the hub."""
    return [str(p) for p in task_data_files(config, splits or None)]


def all_tasks_dev_data(wildcards):
    """The dev files of the search task and of every fanned-out task (export's parity check reads them)."""
    files = search_task_data("dev")
    for task in glue_tasks(config):
        files += [str(p) for p in task_data_files(task_params(config, task), ("dev",))]
    return files


def search_task_inputs(wildcards):
    """What the search and distill_topk score candidates on: every search task's proxy folder and, for the
    fanned-out ones (search.tasks: all), their teachers."""
    others = search_tasks(config)[1:]
    return ([f"results/proxies/{task}" for task in search_tasks(config)]
            + [f"results/glue/{task}/teacher/model" for task in others])


def fanout_task_data(wildcards):
    """The data files of the job's own glue task."""
    return [str(p) for p in task_data_files(task_params(config, wildcards.task))]


def topk_candidates(wildcards):
    """The per-candidate results to gather: the first k architectures of the search's ranking."""
    with open(checkpoints.search.get().output.ranked) as handle:
        ranked = json.load(handle)
    k = config["distill_topk"]["k"]
    return [f"results/distill_topk/candidates/{trial['arch']}.json" for trial in ranked[:k]]
