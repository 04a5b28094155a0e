# Shared setup: read params.yaml with the parser the stages use (kdnas.params: YAML as DVC reads it, duplicate
# keys refused) and check it against workflow/schemas/params.schema.yaml before any job starts, with the same
# one-line errors (exit status 2) the stage CLIs give. Params come from params.yaml only: the stages read it.
import json
import sys
from pathlib import Path

import yaml

from kdnas.data import task_data_files
from kdnas.errors import KdnasError
from kdnas.glue_params import glue_tasks, search_tasks, task_params
from kdnas.params import load_params

PARAMS_FILE = "params.yaml"

try:
    config.update(load_params(PARAMS_FILE))
except KdnasError as error:
    print(f"snakemake: error: {error}", file=sys.stderr)
    sys.exit(2)
LOGS = "logs"


def block(*keys):
    """The params a rule depends on; a change in them (and only them) reruns the rule."""
    out = {}
    for key in keys:
        node = config
        for part in key.split("."):
            node = node[part]
        out[key] = node
    return out


def _dvc_code_deps():
    """Each dvc.yaml stage's code deps (stages/ and kdnas/ entries, folders expanded to their .py files): the
    one list of what a stage runs, so a library edit reruns the same jobs under both engines."""
    stages = yaml.safe_load(open("dvc.yaml"))["stages"]
    code = {}
    for name, stage in stages.items():
        deps = (stage.get("do") or stage).get("deps", [])
        files = []
        for dep in deps:
            if dep.startswith(("stages/", "kdnas/")):
                files += sorted(str(p) for p in Path(dep).rglob("*.py")) if Path(dep).is_dir() else [dep]
        code[name] = files
    return code


DVC_CODE = _dvc_code_deps()


def stage_code(stage):
    """The code files dvc.yaml lists for ``stage``: inputs of the rule that runs it."""
    return DVC_CODE[stage]


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


def task_block(*keys):
    """block() plus the job's own glue.tasks entry, so a change to one task reruns only that task's jobs."""
    return lambda wildcards: {**block(*keys), **block(f"glue.tasks.{wildcards.task}")}


def topk_candidates(wildcards):
    """The per-candidate results to gather: the first k architectures of the search's ranking."""
    with open(checkpoints.search.get().output.ranked) as handle:
        ranked = json.load(handle)
    k = config["distill_topk"]["k"]
    return [f"results/distill_topk/candidates/{trial['arch']}.json" for trial in ranked[:k]]
