"""Snakemake runs the same stages as DVC, with the same commands, params and outputs."""
from __future__ import annotations

import hashlib
import html
import json
import os
import re

import pytest
import yaml

from conftest import REPO, make_pipeline_copy, run, tiny_params, write_params

SHELL = re.compile(r"^Shell command: (.*?)(?: 2> \S+)?$", re.M)
NODE = re.compile(r'<font point-size="18">(\w+)</font>(.*?)</table>', re.S)
FILE = re.compile(r'<font face="monospace">(.*?)</font>')

# The one documented difference between the engines. DVC cannot fan out at run time, so its distill_topk
# stage distils the top-k in a loop in one process; Snakemake's search is a checkpoint, each of the top-k
# gets a distill_candidate job, and distill_topk gathers their results. Together the two rules must do
# what the stage does: the same command (split in two), deps, params and outs, plus the per-candidate files.
FAN_OUT = {"distill_topk": "distill_candidate"}
CANDIDATE_FILE = "results/distill_topk/candidates/{arch}.json"
ARCH = "L1-H128-A4-F384"  # any architecture key: the dry run plans its candidate job


def _dvc_stages():
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _normalise(cmd: str) -> str:
    return " ".join(cmd.split())


@pytest.fixture(scope="module")
def plan():
    """Every command Snakemake plans (--forceall: even where a local run has left outputs), and each rule's
    input and output files from its file graph."""
    targets = ["all", CANDIDATE_FILE.format(arch=ARCH)]
    commands = [_normalise(c) for c in SHELL.findall(run(["snakemake", "-n", "-p", "--forceall", "--cores", "1",
                                                          *targets], REPO).stdout) if c != "None"]
    graph = run(["snakemake", "--filegraph", "--forceall", "--cores", "1", *targets], REPO).stdout
    files = {}
    for rule, body in NODE.findall(graph):
        inputs, _, outputs = body.partition("output &rarr;")
        files[rule] = ({html.unescape(f) for f in FILE.findall(inputs)}, {html.unescape(f) for f in FILE.findall(outputs)})
    return commands, files


def test_dry_run_plans_the_dvc_stages_with_the_same_commands(plan):
    commands, _ = plan
    stages = _dvc_stages()
    by_stage = {}
    for cmd in commands:
        by_stage.setdefault(re.search(r"stages/(\w+)\.py", cmd).group(1), []).append(cmd)
    assert set(by_stage) == set(stages)
    for name, stage in stages.items():
        dvc_cmd = _normalise(stage["cmd"])
        if name not in FAN_OUT:
            assert by_stage[name] == [dvc_cmd], name
            continue
        # the candidate job: the stage's command for one architecture, writing its own file
        candidate, gather = sorted(by_stage[name], key=lambda c: "--gather" in c)
        ranking = re.search(r"--ranking \S+", dvc_cmd).group(0)
        assert candidate == dvc_cmd.replace(ranking, f"--arch {ARCH} --candidate {CANDIDATE_FILE.format(arch=ARCH)}")
        # the gather: ranks the candidates' files into the stage's output
        assert re.fullmatch(rf"python stages/{name}\.py --params params\.yaml --gather( \S+)+ {ranking}", gather), gather


def _dvc_deps(stage):
    """A stage's file deps, without the kdnas modules (Snakemake reruns on code through its rule's command)."""
    return {d for d in stage["deps"] if not d.startswith("kdnas/")}


def _dvc_outs(stage):
    return {next(iter(o)) if isinstance(o, dict) else o for key in ("outs", "metrics", "plots") for o in stage.get(key, [])}


def test_rules_read_and_write_the_dvc_files(plan):
    _, files = plan
    stages = _dvc_stages()
    assert set(files) == set(stages) | set(FAN_OUT.values()) | {"all"}
    for name, stage in stages.items():
        inputs, outputs = files[name]
        if name in FAN_OUT:
            cand_inputs, cand_outputs = files[FAN_OUT[name]]
            assert {re.sub(r",[^}]*}", "}", f) for f in cand_outputs} == {CANDIDATE_FILE}
            assert "<input function>" in inputs  # the candidates' files, known once the search has run
            inputs = (inputs - {"<input function>"}) | cand_inputs
        assert inputs == _dvc_deps(stage), name
        assert outputs == _dvc_outs(stage), name


def _tracked():
    text = "".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    rules = dict(re.findall(r"^(?:rule|checkpoint) (\w+):.*?tracked=block\(([^)]*)\)", text, re.M | re.S))
    return {name: {k.strip().strip('"') for k in keys.replace("\n", " ").split(",") if k.strip()}
            for name, keys in rules.items()}


def test_rules_track_the_same_params_as_dvc():
    rules, stages = _tracked(), _dvc_stages()
    assert set(rules) == set(stages) | set(FAN_OUT.values())
    defaults = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, stage in stages.items():
        tracked = rules[name]
        if name in FAN_OUT:
            candidate = rules[FAN_OUT[name]]
            assert f"{name}.k" not in candidate, "changing k must not rerun the candidates already distilled"
            # DVC tracks the whole block; the two rules split it between them, key by key
            union, block_keys = tracked | candidate, {f"{name}.{key}" for key in defaults[name]}
            assert block_keys <= union, f"{name}: keys no rule tracks: {block_keys - union}"
            tracked = (union - block_keys) | {name}
        assert sorted(tracked) == sorted(stage["params"]), name


def _artifacts(root):
    """Pipeline outputs under root, without each engine's bookkeeping (DVC's .gitignore files,
    Snakemake's markers in directory outputs) and without Snakemake's per-candidate fan-out files."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
            and p.parts[len(root.parts)] in ("results", "metrics", "plots", "report")
            and p.name not in (".gitignore", ".snakemake_timestamp") and "candidates" not in p.parts}


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _planned(root, *args) -> dict[str, int]:
    """Jobs a dry run plans, per rule (from Snakemake's job stats table)."""
    out = run(["snakemake", "-n", *args], root).stdout
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:")[1].split("total")[0]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


LOCAL = ("--workflow-profile", "workflow/profiles/local")


@pytest.mark.slow
def test_snakemake_run_produces_the_files_dvc_produces(dvc_run, tmp_path):
    params = tiny_params()
    root = make_pipeline_copy(tmp_path / "project", params)
    result = run(["snakemake", *LOCAL], root)
    k = params["distill_topk"]["k"]
    # 8 stages, the search checkpoint's k candidate jobs and their gather, and `all`
    assert f"{9 + k + 1} of {9 + k + 1} steps (100%) done" in result.stdout + result.stderr
    produced, expected = _artifacts(root), _artifacts(dvc_run)
    assert produced == expected
    # deterministic stages give byte-identical artifacts under both engines
    for path in ("results/teacher/model/model.safetensors", "results/transfer/logits.parquet",
                 "results/proxy/train.parquet", "results/proxy/dev.parquet", "metrics/teacher.json"):
        assert _sha(root / path) == _sha(dvc_run / path), path
    # the fan-out (a job per candidate, then a gather) distils what DVC's one-process loop does, to the same
    # scores
    fanned = json.loads((root / "results/distill_topk/ranking.json").read_text())
    looped = json.loads((dvc_run / "results/distill_topk/ranking.json").read_text())
    fanned, looped = (sorted(ranking, key=lambda r: r["arch"]) for ranking in (fanned, looped))
    assert [(r["arch"], r["score"]) for r in fanned] == [(r["arch"], r["score"]) for r in looped]
    # float sums in another process order: equal to about 1e-6 relative
    assert [r["kd_loss"] for r in fanned] == pytest.approx([r["kd_loss"] for r in looped], rel=1e-4)
    assert len(list((root / "results/distill_topk/candidates").glob("*.json"))) == k
    assert json.loads((root / "metrics/evaluate.json").read_text())["teacher"] == \
        json.loads((dvc_run / "metrics/evaluate.json").read_text())["teacher"]

    # two runs from scratch: with the analytic latency (tests/params.tiny.yaml) the search, the ranking and
    # the winner depend on nothing measured, so everything but wall-clock fields and timings repeats
    assert _without_clock(_jsonl(root / "results/search/trials.jsonl")) == \
        _without_clock(_jsonl(dvc_run / "results/search/trials.jsonl"))
    assert _json(root / "results/search/ranked.json") == _json(dvc_run / "results/search/ranked.json")
    assert _json(root / "results/student/summary.json")["arch"] == _json(dvc_run / "results/student/summary.json")["arch"]
    assert _sha(root / "results/student/model/model.safetensors") == \
        _sha(dvc_run / "results/student/model/model.safetensors")
    ours, theirs = _json(root / "metrics/evaluate.json"), _json(dvc_run / "metrics/evaluate.json")
    for key in ("arch", "teacher", "student", "percent_of_teacher", "param_ratio"):
        assert ours[key] == theirs[key], key
    assert (root / "results/evaluate/predictions.csv").read_text() == \
        (dvc_run / "results/evaluate/predictions.csv").read_text()

    # one more candidate: one more candidate job and the gather (and what reads the ranking); nothing else
    write_params(root / "params.yaml", {**params, "distill_topk": {**params["distill_topk"], "k": k + 1}})
    assert _planned(root, *LOCAL) == {"distill_candidate": 1, "distill_topk": 1, "latency": 1, "distill_full": 1,
                                      "evaluate": 1, "all": 1}
    write_params(root / "params.yaml", params)
    # `dvc checkout`/`dvc pull` rewrite mtimes, and Snakemake 9 reruns whatever is older than a touched
    # input (a directory or a file too big to checksum) whatever the rerun triggers; `snakemake --touch`
    # after a DVC checkout marks the restored outputs up to date, rerunning nothing
    teacher = root / "results/teacher/model"
    for path in (teacher, *teacher.rglob("*"), root / "metrics/teacher.json"):
        os.utime(path)
    assert _planned(root, *LOCAL).get("proxy") == 1
    run(["snakemake", "--touch", *LOCAL], root)
    assert _planned(root, *LOCAL) == {}


CLOCK = ("seconds", "train_seconds")  # wall-clock fields


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _json(path):
    return json.loads(path.read_text())


def _without_clock(rows):
    return [{k: v for k, v in row.items() if k not in CLOCK} for row in rows]
