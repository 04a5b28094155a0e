"""Snakemake runs the same stages as DVC, with the same commands, params and outputs."""
from __future__ import annotations

import hashlib
import json
import re

import pytest
import yaml

from conftest import REPO, make_pipeline_copy, run, tiny_params

SHELL = re.compile(r"^Shell command: (.*?)(?: 2> \S+)?$", re.M)


def _dvc_stages():
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _dry_run(cwd):
    # --forceall: plan every job even where a local run has left outputs behind
    return run(["snakemake", "-n", "-p", "--forceall", "--cores", "1"], cwd).stdout


def _normalise(cmd: str) -> str:
    return " ".join(cmd.split())


def test_dry_run_plans_the_dvc_stages_with_the_same_commands():
    out = _dry_run(REPO)
    commands = {re.search(r"stages/(\w+)\.py", c).group(1): _normalise(c) for c in SHELL.findall(out) if c != "None"}
    stages = _dvc_stages()
    assert set(commands) == set(stages)
    for name, stage in stages.items():
        assert commands[name] == _normalise(stage["cmd"]), name


def test_rules_track_the_same_params_as_dvc():
    text = "".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    rules = dict(re.findall(r"^rule (\w+):.*?tracked=block\(([^)]*)\)", text, re.M | re.S))
    stages = _dvc_stages()
    assert set(rules) == set(stages)
    for name, stage in stages.items():
        tracked = [k.strip().strip('"') for k in rules[name].replace("\n", " ").split(",") if k.strip()]
        assert sorted(tracked) == sorted(stage["params"]), name


def test_rule_outputs_match_dvc_outs():
    stages = _dvc_stages()
    text = "".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    for name, stage in stages.items():
        block = re.search(rf"^rule {name}:(.*?)^\s+params:", text, re.M | re.S).group(1)
        outputs = block.split("output:")[1]
        declared = set(re.findall(r'"([^"]+)"', outputs))
        dvc_outs = {next(iter(o)) if isinstance(o, dict) else o
                    for key in ("outs", "metrics", "plots") for o in stage.get(key, [])}
        assert declared == dvc_outs, name


def _artifacts(root):
    """Pipeline outputs under root, without each engine's bookkeeping (DVC's .gitignore files,
    Snakemake's markers in directory outputs)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
            and p.parts[len(root.parts)] in ("results", "metrics", "plots", "report")
            and p.name not in (".gitignore", ".snakemake_timestamp")}


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_snakemake_run_produces_the_files_dvc_produces(dvc_run, tmp_path):
    root = make_pipeline_copy(tmp_path / "project", tiny_params())
    result = run(["snakemake", "--cores", "2"], root)
    assert "10 of 10 steps (100%) done" in result.stdout + result.stderr
    produced, expected = _artifacts(root), _artifacts(dvc_run)
    assert produced == expected
    # deterministic stages give byte-identical artifacts under both engines
    for path in ("results/teacher/model/model.safetensors", "results/transfer/logits.parquet",
                 "results/proxy/train.parquet", "results/proxy/dev.parquet", "metrics/teacher.json"):
        assert _sha(root / path) == _sha(dvc_run / path), path
    # two runs from scratch: with the analytic latency (tests/params.tiny.yaml) the search, the ranking and
    # the winner depend on nothing measured, so everything but wall-clock fields and timings repeats
    assert _without_clock(_jsonl(root / "results/search/trials.jsonl")) == \
        _without_clock(_jsonl(dvc_run / "results/search/trials.jsonl"))
    for path in ("results/search/topk.json", "results/distill_topk/ranking.json"):
        assert _without_clock(_json(root / path)) == _without_clock(_json(dvc_run / path)), path
    assert _json(root / "results/student/summary.json")["arch"] == _json(dvc_run / "results/student/summary.json")["arch"]
    assert _sha(root / "results/student/model/model.safetensors") == \
        _sha(dvc_run / "results/student/model/model.safetensors")
    ours, theirs = _json(root / "metrics/evaluate.json"), _json(dvc_run / "metrics/evaluate.json")
    for key in ("arch", "teacher", "student", "percent_of_teacher", "param_ratio"):
        assert ours[key] == theirs[key], key
    assert (root / "results/evaluate/predictions.csv").read_text() == \
        (dvc_run / "results/evaluate/predictions.csv").read_text()


CLOCK = ("seconds", "train_seconds")  # wall-clock fields


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _json(path):
    return json.loads(path.read_text())


def _without_clock(rows):
    return [{k: v for k, v in row.items() if k not in CLOCK} for row in rows]
