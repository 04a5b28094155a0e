"""Bad input reaches the stage CLIs as a one-line error (exit 2) before heavy work, and loses no artifact."""
from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from conftest import REPO, run, tiny_params, write_params
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
    module = _stage("teacher")
    args = _teacher_args(tmp_path, write_params(tmp_path / "params.yaml", params))
    start = time.perf_counter()
    code = run_stage("teacher", module.teacher_stage, module.parser, args)
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else "", elapsed


def _malformed_glue(tmp_path: Path) -> str:
    folder = tmp_path / "glue" / "SST-2"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text("sentence\tlabel\na fine film\t1\nbroken row without label\n")
    (folder / "dev.tsv").write_text("sentence\tlabel\nfine\t1\n")
    return str(tmp_path / "glue")


CASES = {
    "unknown task": (lambda p, t: p.update(task="sst-3"), "task = 'sst-3' is invalid: unknown GLUE task 'sst-3'"),
    "missing GLUE folder": (lambda p, t: p["data"].update(glue_dir=str(t / "no_glue")), "GLUE folder not found"),
    "missing split file": (lambda p, t: p.update(task="qnli"), "split file not found: "),
    "malformed TSV row": (lambda p, t: p["data"].update(glue_dir=_malformed_glue(t)),
                          "SST-2/train.tsv:3: expected 2 tab-separated columns, got 1"),
    "unknown teacher path": (lambda p, t: p["teacher"].update(backbone=str(t / "no_model")),
                             "is not a folder (expected a Hugging Face model folder or hub id)"),
    "teacher folder without config": (lambda p, t: (t / "empty_model").mkdir() or p["teacher"].update(
        backbone=str(t / "empty_model")), "config.json is missing"),
    "space with no valid architecture": (lambda p, t: p["space"].update(hidden=[130], heads=[4, 12]),
                                         "space has no valid architecture"),
    "top-k above candidates": (lambda p, t: (p["distill_topk"].update(k=9), p["search"].update(candidates=4)),
                               "distill_topk.k = 9 exceeds search.candidates = 4"),
}


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
    assert line.startswith("teacher: error: ") and expected in line
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
    args = ["--params", str(write_params(tmp_path / "params.yaml", params)), "--teacher", str(tmp_path / "none"),
            "--proxy", str(tmp_path / "none"), "--ranked", str(ranked), "--ranking", str(keep)]
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
        "teacher: error: params: task = 'sst-3' is invalid: unknown GLUE task 'sst-3'; known tasks: "
        "cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli"]
