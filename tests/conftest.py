"""Shared fixtures: the real GLUE folder, the tiny params, and a tiny pipeline run reused by several tests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
GLUE_DIR = Path(os.environ.get("KDNAS_GLUE_DIR", REPO.parent / "shared" / "data" / "glue")).resolve()
TINY_PARAMS = REPO / "tests" / "params.tiny.yaml"
# what a pipeline copy needs: the stage CLIs, the library (as dvc deps), both workflow descriptions
PIPELINE_FILES = ["dvc.yaml", "Snakefile", "stages", "kdnas", "workflow"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def pytest_configure(config):
    if not GLUE_DIR.is_dir():
        raise pytest.UsageError(f"real GLUE data not found at {GLUE_DIR}; set KDNAS_GLUE_DIR")


def tiny_params() -> dict:
    params = yaml.safe_load(TINY_PARAMS.read_text())
    params["data"]["glue_dir"] = str(GLUE_DIR)
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


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout)
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


@pytest.fixture(scope="session")
def dvc_run(tmp_path_factory) -> Path:
    """The tiny pipeline run once with `dvc repro` in a fresh copy (real SST-2 rows, real teacher)."""
    root = make_pipeline_copy(tmp_path_factory.mktemp("dvc") / "project", tiny_params())
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)
    result = run(["dvc", "repro"], root, timeout=1800)  # the GLUE fan-out adds stages; CI cores are shared
    (root / "repro.log").write_text(result.stdout + result.stderr)
    return root


@pytest.fixture(scope="session")
def teacher_dir(dvc_run) -> Path:
    return dvc_run / "results" / "teacher" / "model"
