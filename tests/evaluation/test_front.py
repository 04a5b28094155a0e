"""The hand-crafted family and the front the searched student is compared with (kdnas.evaluation.baselines, kdnas.evaluation.front)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_params, write_params

from kdnas.data.tasks import get_task
from kdnas.errors import KdnasError
from kdnas.evaluation.baselines import describe, hand_crafted_archs
from kdnas.evaluation.front import (
    bootstrap_covariance,
    compare,
    front_weights,
    glue_comparison,
    pareto_front,
    standard_error,
)
from kdnas.latency.table import LatencyTable
from kdnas.models.arch import Arch
from kdnas.params import ParamsError, load_params, teacher_config

MINILM = {"num_hidden_layers": 6, "hidden_size": 384, "num_attention_heads": 12, "intermediate_size": 1536}


def test_the_family_drops_layers_uniformly_at_full_width_and_trims_the_ffn():
    archs = hand_crafted_archs(MINILM, {"keep_every": [2, 3], "ffn_fraction": [1.0, 0.25]})
    assert [a.key for a in archs] == ["L3-H384-A12-F1536", "L3-H384-A12-F384", "L2-H384-A12-F1536", "L2-H384-A12-F384"]
    assert hand_crafted_archs(MINILM, {"keep_every": [], "ffn_fraction": [1.0]}) == []

    class Config:
        num_hidden_layers, intermediate_size = 6, 1536

    # every other layer (DistilBERT's choice) and every third, always ending at the last
    assert describe(Arch(3, 384, 12, 1536), Config)["layers_kept"] == [1, 3, 5]
    assert describe(Arch(2, 384, 12, 384), Config) == {"layers_kept": [2, 5], "ffn_fraction": 0.25}
    with pytest.raises(KdnasError, match="keep_every = 7: the teacher has only 6 layers"):
        hand_crafted_archs(MINILM, {"keep_every": [7], "ffn_fraction": [1.0]})


def test_params_refuse_a_family_the_teacher_cannot_give_in_one_line(tmp_path):
    assert teacher_config(tiny_params()["teacher"]["backbone"])["num_hidden_layers"] == 6
    for key, value, message in (("keep_every", [2, 8], "baselines.keep_every = [2, 8]: 8 is more than the teacher's 6 layers"),
                                ("keep_every", [1], "baselines.keep_every"),
                                ("ffn_fraction", [1.5], "baselines.ffn_fraction"),
                                ("ffn_fraction", [], "baselines.ffn_fraction")):
        params = tiny_params()
        params["baselines"][key] = value
        with pytest.raises(ParamsError, match="params: " + message.replace("[", r"\[").replace("]", r"\]")) as error:
            load_params(write_params(tmp_path / "params.yaml", params))
        assert "\n" not in str(error.value)


POINTS = {"slow-good": (30.0, 0.84), "fast": (10.0, 0.80), "mid": (20.0, 0.86), "dominated": (25.0, 0.82)}


def test_the_front_keeps_only_students_no_other_beats_on_both_latency_and_score():
    assert pareto_front(POINTS) == ["fast", "mid"]  # slow-good and dominated are slower than mid and worse


def test_the_front_is_interpolated_in_milliseconds_between_the_members_around_the_latency():
    weights, position = front_weights(POINTS, 12.5)
    assert position == "inside" and weights == pytest.approx({"fast": 0.75, "mid": 0.25})
    assert front_weights(POINTS, 20.0) == ({"mid": 1.0}, "inside")
    # outside the family's range: the nearest member, flagged
    assert front_weights(POINTS, 8.0) == ({"fast": 1.0}, "faster")
    assert front_weights(POINTS, 40.0) == ({"mid": 1.0}, "slower")


def _latency(ms: dict[str, float], batch_sizes=(1, 32)) -> LatencyTable:
    return LatencyTable(pd.DataFrame([{"backend": backend, "model": model, "batch_size": size,
                          "median_ms": value * size * (1 if backend == "eager" else 9)}
                         for backend in ("eager", "onnxruntime") for size in batch_sizes for model, value in ms.items()]))


def test_the_margin_is_the_score_above_the_front_at_the_students_own_eager_latency():
    scores = {"student": 0.85, "fast": 0.80, "mid": 0.86, "slow-good": 0.84, "dominated": 0.82}
    latency = _latency({"L9": 12.5, **{name: ms for name, (ms, _) in POINTS.items()}})
    covariance = {"models": list(scores), "matrix": np.diag([1e-4, 4e-4, 1e-4, 1e-4, 1e-4]).tolist()}
    out = compare(scores, latency, "L9", list(POINTS), [covariance])
    assert list(out) == ["bs1", "bs32"]  # eager only, every batch size
    for margin in out.values():
        assert margin["front_score"] == pytest.approx(0.75 * 0.80 + 0.25 * 0.86)
        assert margin["margin"] == pytest.approx(0.85 - 0.815)
        # var(student - .75 fast - .25 mid) with independent scores
        assert margin["se"] == pytest.approx(math.sqrt(1e-4 + 0.75 ** 2 * 4e-4 + 0.25 ** 2 * 1e-4))
        assert margin["position"] == "inside" and margin["front"] == ["fast", "mid"]
    assert out["bs32"]["student_ms"] == pytest.approx(12.5 * 32)
    with pytest.raises(KdnasError, match="no eager latency at batch 1 for L8: rerun the latency stage"):
        compare(scores, latency, "L8", list(POINTS), [covariance])
    assert compare(scores, latency, "L9", [], [covariance]) == {}


def test_paired_bootstrap_gives_the_binomial_and_paired_difference_errors():
    rng = np.random.default_rng(0)
    n = 872
    labels = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < 0.8, labels, 1 - labels)  # about 80% right
    b = a.copy()
    flip = rng.choice(n, 40, replace=False)
    b[flip] = 1 - b[flip]  # differs from a on 40 rows
    cov = bootstrap_covariance(get_task("sst2"), labels, {"student": a, "base": b, "same": a.copy()}, seed=0)
    p = float((a == labels).mean())
    assert standard_error(cov, {"student": 1.0}) == pytest.approx(math.sqrt(p * (1 - p) / n), rel=0.1)
    d = (a == labels).astype(float) - (b == labels).astype(float)
    assert standard_error(cov, {"student": 1.0, "base": -1.0}) == pytest.approx(d.std() / math.sqrt(n), rel=0.1)
    assert standard_error(cov, {"student": 1.0, "same": -1.0}) == pytest.approx(0.0, abs=1e-12)
    # the same seed resamples the same rows: reproducible
    assert bootstrap_covariance(get_task("sst2"), labels, {"student": a, "base": b, "same": a}, seed=0)["matrix"] == cov["matrix"]


def test_the_glue_margin_averages_tasks_and_adds_their_variances():
    latency = _latency({"S": 12.5, "fast": 10.0, "mid": 20.0})
    tasks = {"sst2": get_task("sst2"), "rte": get_task("rte")}
    results = {}
    for task, (student, fast, mid, var) in {"sst2": (0.85, 0.80, 0.86, 1e-4), "rte": (0.60, 0.55, 0.62, 4e-4)}.items():
        results[task] = {"student": {"accuracy": student},
                         "hand_crafted": {"scores": {"fast": fast, "mid": mid},
                                          "bootstrap": {"models": ["student", "fast", "mid"],
                                                        "matrix": np.diag([var, 0.0, 0.0]).tolist()}}}
    out = glue_comparison(results, tasks, latency, "S")
    assert out["scores"] == pytest.approx({"fast": 0.675, "mid": 0.74})
    bs1 = out["margins"]["bs1"]
    assert bs1["margin"] == pytest.approx(0.725 - (0.75 * 0.675 + 0.25 * 0.74))
    assert bs1["se"] == pytest.approx(math.sqrt(1e-4 + 4e-4) / 2)


def test_the_latency_table_reads_medians_speedups_and_rows_per_runtime():
    table = _latency({"teacher": 10.0, "L2": 4.0})
    table.frame["speedup"] = table.frame.groupby(["backend", "batch_size"])["median_ms"].transform("max") / table.frame["median_ms"]
    table.frame["seq_len"] = 64
    assert table.medians() == {1: {"teacher": 10.0, "L2": 4.0}, 32: {"teacher": 320.0, "L2": 128.0}}
    assert table.medians("onnxruntime")[1] == {"teacher": 90.0, "L2": 36.0}
    assert table.nearest_batch_size(32) == 32 and table.nearest_batch_size(8) == 1 and table.nearest_batch_size(30) == 32
    assert table.speedups("L2") == {"bs1": 2.5, "bs32": 2.5, "onnxruntime_bs1": 2.5, "onnxruntime_bs32": 2.5}
    rows = table.versus_teacher("L2")
    assert [(r["backend"], r["batch_size"], r["teacher_ms"], r["student_ms"]) for r in rows] == [
        ("eager", 1, 10.0, 4.0), ("eager", 32, 320.0, 128.0), ("onnxruntime", 1, 90.0, 36.0), ("onnxruntime", 32, 2880.0, 1152.0)]
