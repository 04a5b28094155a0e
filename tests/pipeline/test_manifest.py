"""The stage manifest is the one description of every stage: dvc.yaml is generated from it, each stage's CLI
takes exactly its flags, and the code deps it derives follow the imports."""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import runpy
from pathlib import Path

import pytest
from conftest import PARAMS_READS, REPO, tiny_params

from kdnas.pipeline.code_deps import stage_code_deps
from kdnas.pipeline.dvc_yaml import render
from kdnas.pipeline.manifest import MANIFEST, PARAMS, TASK_PARAMS, In, Out

# distill_topk's extra flags: Snakemake's fan-out runs one candidate (--arch, --candidate) or ranks their
# results (--gather); DVC runs the loop with the manifest's flags
FAN_OUT_FLAGS = {"distill_topk": {"--arch", "--candidate", "--gather"}}


def test_dvc_yaml_is_generated_from_the_manifest():
    assert (REPO / "dvc.yaml").read_text() == render(), "run: python -m kdnas.pipeline.dvc_yaml"


@pytest.mark.parametrize("name", list(MANIFEST))
def test_stage_cli_takes_the_manifest_flags_with_their_roles(name):
    """check_inputs refuses a missing path for every flag documented as ``input:``: the CLI's help must say
    input for the manifest's inputs and output for its outputs."""
    parser = runpy.run_path(str(REPO / "stages" / f"{name}.py"))["parser"]
    actions = {a.option_strings[0]: a for a in parser._actions if a.option_strings[0].startswith("--")}
    declared = {f"--{arg.flag}": arg for arg in MANIFEST[name].args if arg.flag is not None}
    assert set(actions) == set(declared) | {"--params", "--log"} | FAN_OUT_FLAGS.get(name, set())
    for flag, arg in declared.items():
        role = "input:" if isinstance(arg, In) else "output:" if isinstance(arg, Out) else None
        help_text = actions[flag].help or ""
        if role:
            assert help_text.startswith(role), f"{name} {flag}: {help_text!r}"
        else:
            assert not help_text.startswith(("input:", "output:")), f"{name} {flag}: {help_text!r}"


@pytest.mark.parametrize("name", list(MANIFEST))
def test_every_stage_has_its_cli_and_function(name):
    assert f'run_stage("{name}", parser)' in (REPO / "stages" / f"{name}.py").read_text()
    module, function = MANIFEST[name].function.split(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_code_deps_follow_the_imports():
    teacher, search = set(stage_code_deps("teacher")), set(stage_code_deps("search"))
    # the search runs the search package, the multi-task proxy and its pipeline function (a lazy import string)
    searching = {"kdnas/search/runner.py", "kdnas/search/strategies/kd_nas.py", "kdnas/search/proxy_tasks.py",
                 "kdnas/pipeline/search.py"}
    assert searching | {"kdnas/latency/predictor.py"} <= search
    # fine-tuning the teacher runs none of them; the params check (kdnas.cli) imports the search strategies for
    # every stage, but an edit there cannot change a teacher
    assert not searching & teacher
    assert {"kdnas/distillation/training.py", "kdnas/pipeline/teacher.py", "kdnas/distillation/losses/__init__.py",
            "kdnas/distillation/losses/emd.py"} <= teacher
    assert not {"kdnas/cli.py", "kdnas/params.py"} & (teacher | search)
    # deps are files: a package's __init__ counts when it holds code (Python runs it first), not when
    # it is a docstring
    assert {"kdnas/search/strategies/__init__.py", "kdnas/distillation/losses/__init__.py"} <= search
    assert not {"kdnas/search/__init__.py", "kdnas/distillation/__init__.py"} & search
    assert all(Path(REPO / dep).is_file() for dep in search | teacher)


def test_code_deps_see_an_import_added_inside_a_function(tmp_path):
    """A module imported lazily (inside a function) is run by the stage all the same."""
    import shutil

    for folder in ("kdnas", "stages"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    assert "kdnas/search/proxy_tasks.py" not in stage_code_deps("teacher", root=tmp_path)
    module = tmp_path / "kdnas" / "pipeline" / "teacher.py"
    module.write_text(module.read_text() + "\n\ndef _late():\n    from kdnas.search.proxy_tasks import combine\n")
    assert "kdnas/search/proxy_tasks.py" in stage_code_deps("teacher", root=tmp_path)


def test_glue_params_writes_every_key_a_per_task_stage_tracks_with_the_tasks_overrides(tmp_path):
    """A per-task stage tracks its keys in its task's resolved params file (DVC tracks only keys that exist, and a
    task's glue.tasks entry holds only what it overrides); glue_params writes each of those keys with the value
    the stage runs with: the task's override where it has one, the search run's value elsewhere."""
    import yaml

    from kdnas.params_keys import value_at
    from kdnas.pipeline.glue_params import glue_params_stage
    from kdnas.task_params import task_params

    params = tiny_params()
    params["glue"]["tasks"]["stsb"] = {"distill_full": {"epochs": 5}, "data": {"max_length": 96}}
    out = tmp_path / "stsb.yaml"
    glue_params_stage(MANIFEST["glue_params"].paths(argparse.Namespace(task="stsb", out=str(out))), params)
    written, resolved = yaml.safe_load(out.read_text()), task_params(params, "stsb")
    per_task = [stage for stage in MANIFEST.values() if stage.per_task and stage.name != "glue_params"]
    assert len(per_task) == 6 and all(stage.params_file == TASK_PARAMS for stage in per_task)
    for stage in per_task:
        for key in stage.params:
            assert value_at(written, key) == value_at(resolved, key), (stage.name, key)
    assert written["distill_full"] == {**params["distill_full"], "epochs": 5}
    assert written["data"]["max_length"] == 96 and written["data"]["train_size"] == params["data"]["train_size"]
    assert "glue" not in written and "search" in written and set(written["search"]) == {"losses", "reward", "latency"}
    # glue_params itself tracks, in params.yaml, those keys and its task's entry
    assert MANIFEST["glue_params"].params_file == PARAMS and "glue.tasks.${key}" in MANIFEST["glue_params"].params


def undeclared_reads(stage: str, task: str | None, reads: list[str]) -> list[str]:
    """The params keys a stage read that its manifest entry does not declare (a block declared covers its keys)."""
    declared = MANIFEST[stage].readable_params(task)
    return [read for read in reads if not any(read == key or read.startswith(key + ".") for key in declared)]


@pytest.mark.slow  # reads the whole tiny pipeline run
def test_every_stage_reads_only_the_params_it_declares(dvc_run):
    """Run with KDNAS_PARAMS_AUDIT, each stage of the tiny pipeline recorded the params keys it read: each must
    be among those the manifest declares (dvc.yaml's params, the rules' stage_params), else a change to it would
    leave a stale result under both engines."""
    records = [json.loads(line) for line in (dvc_run / PARAMS_READS).read_text().splitlines()]
    stages = {r["stage"] for r in records}
    assert stages == set(MANIFEST), f"stages that recorded nothing: {set(MANIFEST) - stages}"
    problems = {f"{r['stage']}@{r['task']}": bad for r in records
                if (bad := undeclared_reads(r["stage"], r["task"], r["reads"]))}
    assert not problems, f"reads the manifest does not declare: {problems}"


def test_the_audit_sees_an_undeclared_read():
    from kdnas.params_audit import _READS, AuditedParams, deepest

    _READS.clear()
    params = AuditedParams({"latency": {"seq_len": 64, "threads": 2}, "space": {"init": "inherit"}})
    params["latency"]["seq_len"], params["space"]
    assert deepest(_READS) == ["latency.seq_len", "space"]
    assert undeclared_reads("latency_profile", None, deepest(_READS)) == ["space"]  # declares space.* keys only
    assert undeclared_reads("search", None, deepest(_READS)) == []


def test_under_the_tests_a_stage_reading_an_undeclared_key_fails_at_once():
    """The suite sets KDNAS_PARAMS_STRICT: run_stage then holds each stage to the keys it declares, so any test
    that runs a stage fails on an undeclared read, .get with a default included; the way to a declared key and
    a task's params rebuilt from them stay readable."""
    from kdnas.params_audit import STRICT_ENV, UndeclaredParamRead, start
    from kdnas.task_params import task_params

    assert os.environ[STRICT_ENV] == "1"
    params = start(tiny_params(), MANIFEST["glue_distill"].readable_params("stsb"))
    assert params["search"]["latency"]["backend"] == "eager" and params["distill_full"]["epochs"] >= 1
    with pytest.raises(UndeclaredParamRead, match="'search.workers' read by a stage that does not declare it"):
        params["search"].get("workers", 1)
    with pytest.raises(UndeclaredParamRead, match="'data.glue_dir'"):
        params["data"]["glue_dir"]  # glue_distill declares data.max_length only
    stsb = task_params(params, "stsb")
    assert stsb["data"]["max_length"] == params["data"]["max_length"]
    with pytest.raises(UndeclaredParamRead):
        stsb["teacher"]


def test_a_stage_function_gets_only_the_paths_its_stage_declares():
    """run_stage hands the function the manifest's paths object, not argparse's Namespace: the declared flags,
    read-only; the CLI's own options (--params, --log) and anything undeclared are not on it."""
    parsed = argparse.Namespace(model="m", metrics="x.json", log="teacher.log", params="params.yaml")
    paths = MANIFEST["teacher"].paths(parsed)
    assert (paths.model, paths.metrics) == ("m", "x.json")
    with pytest.raises(AttributeError):
        paths.log  # noqa: B018
    with pytest.raises(dataclasses.FrozenInstanceError):
        paths.model = "other"
    # a stage's other ways to run (distill_topk's Snakemake fan-out) are declared too, and parsed by its CLI
    assert MANIFEST["distill_topk"].paths_type(gather=["a.json"]).gather == ["a.json"]
    assert "--gather" in runpy.run_path(str(REPO / "stages" / "distill_topk.py"))["parser"].format_help()
