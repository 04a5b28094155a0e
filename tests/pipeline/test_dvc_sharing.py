"""Sharing a finished run through a DVC remote, and DVC experiments on the tiny project (a copy of the
`dvc_run` fixture's folder, committed to git as a user's project would be)."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import time

import pytest
import yaml
from conftest import REPO, run

pytestmark = pytest.mark.slow

STAGES = ("teacher", "transfer", "proxy", "latency_profile", "search", "distill_topk", "latency", "distill_full",
          "evaluate")
GIT = ["git", "-c", "user.name=kdnas test", "-c", "user.email=test@kdnas.local"]


def _committed_copy(dvc_run, dest):
    shutil.copytree(dvc_run, dest, symlinks=True)
    run([*GIT, "add", "-A"], dest)
    run([*GIT, "commit", "-q", "-m", "tiny run"], dest)
    return dest


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_push_clone_pull_gives_an_up_to_date_pipeline(dvc_run, tmp_path):
    start = time.perf_counter()
    project = _committed_copy(dvc_run, tmp_path / "project")
    run(["dvc", "remote", "add", "-d", "storage", str(tmp_path / "remote")], project)
    run([*GIT, "commit", "-q", "-am", "remote"], project)
    run(["dvc", "push", "--run-cache"], project)

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    assert not (clone / "results/teacher/model").exists()  # the artifacts come from the remote, not git
    # the metrics (cache: false, DVC's convention) travel in git: the project's own .gitignore lets them in
    assert (project / ".gitignore").read_text() == (REPO / ".gitignore").read_text()
    for path in ("metrics/teacher.json", "metrics/evaluate.json", "metrics/glue.json", "metrics/glue/stsb/evaluate.json"):
        assert _sha(clone / path) == _sha(dvc_run / path), path
    run(["dvc", "pull"], clone)
    assert "Data and pipelines are up to date." in run(["dvc", "status"], clone).stdout
    repro = run(["dvc", "repro"], clone)
    log = repro.stdout + repro.stderr
    assert "Running stage" not in log
    for stage in STAGES:
        assert f"Stage '{stage}' didn't change, skipping" in log
    for path in ("results/teacher/model/model.safetensors", "results/student/model/model.safetensors",
                 "results/distill_topk/ranking.json", "results/search/trials.jsonl"):
        assert _sha(clone / path) == _sha(dvc_run / path), path

    # A colleague whose dvc.lock records only the teacher (say, their branch never ran the rest), with the
    # same code, params and data: `dvc repro --pull` fetches the pushed run cache and restores the stages
    # instead of running them. (DVC pushes no objects for `cache: false` outputs, the metrics JSONs kept in
    # git, so stages writing those come from dvc.lock and git, as the teacher does here.)
    colleague = tmp_path / "colleague"
    run(["git", "clone", "-q", str(project), str(colleague)], tmp_path)
    lock = yaml.safe_load((colleague / "dvc.lock").read_text())
    lock["stages"] = {"teacher": lock["stages"]["teacher"]}
    (colleague / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    restored = run(["dvc", "repro", "--pull", "transfer", "proxy"], colleague)
    log = restored.stdout + restored.stderr
    assert "Running stage" not in log
    for stage in ("transfer", "proxy"):
        assert f"Stage '{stage}' is cached - skipping run, checking out outputs" in log
    for path in ("results/teacher/model/model.safetensors", "results/transfer/logits.parquet",
                 "results/proxies/sst2/train.parquet"):
        assert _sha(colleague / path) == _sha(dvc_run / path), path
    print(f"push, clone, pull, status, repro and the run-cache restore: {time.perf_counter() - start:.1f} s")


def _exp_rows(project) -> dict[str, dict]:
    """`dvc exp show` as {experiment name or 'workspace': {'batch_size': ..., 'student_metric': ...}}."""
    rows = {}
    for commit in json.loads(run(["dvc", "exp", "show", "--json"], project).stdout):
        entries = [commit] + [exp for exp in commit.get("experiments") or [] for exp in exp["revs"]]
        for entry in entries:
            data = (entry.get("data") or {})
            params = data.get("params", {}).get("params.yaml", {}).get("data", {})
            metrics = data.get("metrics", {}).get("metrics/evaluate.json", {}).get("data", {})
            if params:
                rows[entry.get("name") or entry["rev"]] = {"batch_size": params["evaluate"]["batch_size"],
                                                           "metrics": metrics}
    return rows


def test_experiments_run_and_queue_and_show_side_by_side(dvc_run, tmp_path):
    start = time.perf_counter()
    project = _committed_copy(dvc_run, tmp_path / "project")
    one = run(["dvc", "exp", "run", "-n", "bs64", "-S", "evaluate.batch_size=64"], project)
    ran = re.findall(r"Running stage '([\w@]+)'", one.stdout + one.stderr)
    # a cheap parameter reruns only the stages that read it: the scoring ones and the GLUE table (and each
    # task's glue_params, which rewrites the task's resolved params, a second's work)
    tasks = yaml.safe_load((project / "params.yaml").read_text())["glue"]["tasks"]
    assert sorted(ran) == sorted(["evaluate", "glue", *(f"{stage}@{task}" for task in tasks
                                                        for stage in ("glue_params", "glue_evaluate"))])

    run(["dvc", "exp", "run", "--queue", "-S", "evaluate.batch_size=16,32"], project)  # a grid of two
    run(["dvc", "queue", "start", "-j", "1"], project)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], project).stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(3)
    assert "Failed" not in status and status.count("Success") == 2, status

    rows = _exp_rows(project)
    by_size = {row["batch_size"]: row["metrics"] for row in rows.values()}
    assert {16, 32, 64, 128} <= set(by_size)  # the baseline and three experiments, side by side
    for size in (16, 32, 64):  # evaluation batch size changes padding only, not what the models predict
        assert abs(by_size[size]["student"]["accuracy"] - by_size[128]["student"]["accuracy"]) <= 0.02, by_size
    print(f"one experiment and a queued grid of two: {time.perf_counter() - start:.1f} s")
