"""Snakemake runs the same stages as DVC, with the same commands, params and outputs."""
from __future__ import annotations

import hashlib
import json
import re

import pandas as pd
import pytest
import yaml

from conftest import REPO, make_pipeline_copy, run, tiny_params

SHELL = re.compile(r"^Shell command: (.*?)(?: 2> \S+)?$", re.M)


def _dvc_stages():
    """dvc.yaml's stage definitions; a foreach stage's is its ``do`` block (``${key}`` = the task)."""
    return {name: stage.get("do", stage) for name, stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items()}


def _dvc_commands():
    """Every command dvc.yaml runs with the repo's params.yaml, foreach stages expanded per task."""
    tasks = list(yaml.safe_load((REPO / "params.yaml").read_text())["glue"]["tasks"])
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {_normalise(stage["do"]["cmd"].replace("${key}", task)) for stage in stages.values() if "foreach" in stage
            for task in tasks} | {_normalise(stage["cmd"]) for stage in stages.values() if "foreach" not in stage}


def _dry_run(cwd):
    # --forceall: plan every job even where a local run has left outputs behind
    return run(["snakemake", "-n", "-p", "--forceall", "--cores", "1"], cwd).stdout


def _normalise(cmd: str) -> str:
    return " ".join(cmd.split())


def test_dry_run_plans_the_dvc_stages_with_the_same_commands():
    out = _dry_run(REPO)
    commands = {_normalise(c) for c in SHELL.findall(out) if c != "None"}
    assert commands == _dvc_commands()


def test_rules_track_the_same_params_as_dvc():
    text = "".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    rules = {name: (helper, keys) for name, helper, keys in
             re.findall(r"^rule (\w+):.*?tracked=(block|task_block)\(([^)]*)\)", text, re.M | re.S)}
    stages = _dvc_stages()
    assert set(rules) == set(stages)
    for name, stage in stages.items():
        helper, keys = rules[name]
        tracked = [k.strip().strip('"') for k in keys.replace("\n", " ").split(",") if k.strip()]
        # task_block adds the job's own glue.tasks.<task> entry, as dvc.yaml's glue.tasks.${key}
        if helper == "task_block":
            tracked.append("glue.tasks.${key}")
        assert sorted(tracked) == sorted(stage["params"]), name


def test_rule_outputs_match_dvc_outs():
    stages = _dvc_stages()
    text = "".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    for name, stage in stages.items():
        block = re.search(rf"^rule {name}:(.*?)^\s+params:", text, re.M | re.S).group(1)
        outputs = block.split("output:")[1]
        declared = set(re.findall(r'"([^"]+)"', outputs))
        dvc_outs = {(next(iter(o)) if isinstance(o, dict) else o).replace("${key}", "{task}")
                    for key in ("outs", "metrics", "plots") for o in stage.get(key, [])}
        assert declared == dvc_outs, name


def _artifacts(root):
    """Pipeline outputs under root, without each engine's bookkeeping (DVC's .gitignore files,
    Snakemake's markers in directory outputs)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
            and p.parts[len(root.parts)] in ("results", "metrics", "plots", "report", "export")
            and p.name not in (".gitignore", ".snakemake_timestamp")}


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_snakemake_run_produces_the_files_dvc_produces(dvc_run, tmp_path):
    root = make_pipeline_copy(tmp_path / "project", tiny_params())
    result = run(["snakemake", "--cores", "2"], root, timeout=1800)  # the GLUE fan-out adds jobs
    jobs = 9 + 4 * len(tiny_params()["glue"]["tasks"]) + 3  # the search task, each glue task, glue, export, all
    assert f"{jobs} of {jobs} steps (100%) done" in result.stdout + result.stderr
    produced, expected = _artifacts(root), _artifacts(dvc_run)
    assert produced == expected
    # deterministic stages give byte-identical artifacts under both engines
    for path in ("results/teacher/model/model.safetensors", "results/transfer/logits.parquet",
                 "results/proxy/train.parquet", "results/proxy/dev.parquet", "metrics/teacher.json"):
        assert _sha(root / path) == _sha(dvc_run / path), path
    ours = pd.read_csv(root / "results/search/trials.csv")
    theirs = pd.read_csv(dvc_run / "results/search/trials.csv")
    # latency is measured, so only the trained part of each trial must agree
    assert ours["arch"].tolist() == theirs["arch"].tolist()
    assert ours["accuracy"].tolist() == theirs["accuracy"].tolist()
    assert json.loads((root / "metrics/evaluate.json").read_text())["teacher"] == \
        json.loads((dvc_run / "metrics/evaluate.json").read_text())["teacher"]
    for path in ("results/glue/stsb/teacher/model/model.safetensors", "results/glue/stsb/transfer/logits.parquet",
                 "results/glue/stsb/student/model/model.safetensors"):
        assert _sha(root / path) == _sha(dvc_run / path), path
    _adding_a_task_plans_only_its_jobs(root)


def _planned(root):
    """Snakemake's plan on root: {rule: jobs} from the dry run's job stats, and its job messages."""
    out = run(["snakemake", "-n", "--cores", "1"], root).stdout
    stats = out.split("Job stats:")[1].split("total")[0]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", stats, re.M)}, out


def _adding_a_task_plans_only_its_jobs(root):
    """A task added to glue.tasks plans its four jobs plus the gathering ones; a change to one task's entry
    replans only that task's jobs (tracked params are per wildcard)."""
    gathering = {"glue": 1, "export": 1, "all": 1}
    per_task = {f"glue_{s}": 1 for s in ("teacher", "transfer", "distill", "evaluate")}
    params = tiny_params()
    params["glue"]["tasks"]["rte"] = {"data": {"train_size": 100}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    jobs, out = _planned(root)
    assert jobs == {**per_task, **gathering}
    assert "Fine-tuning the rte teacher" in out and "stsb" not in out
    params["glue"]["tasks"].pop("rte")
    params["glue"]["tasks"]["stsb"]["teacher"] = {"epochs": 2}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    jobs, out = _planned(root)
    assert jobs == {**per_task, **gathering}
    assert "Fine-tuning the stsb teacher" in out
