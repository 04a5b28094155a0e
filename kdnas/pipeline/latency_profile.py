"""Stage: measure a sample of the search space on this hardware and fit the latency predictor."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from kdnas.distillation.students import build_student
from kdnas.io import write_json
from kdnas.latency.measure import (
    hardware_identity,
    measure_interleaved,
    measure_on_backend,
)
from kdnas.latency.predictor import LatencyPredictor, analytic_ms, validation_metrics
from kdnas.models.arch import Arch
from kdnas.models.loading import load_model_and_tokenizer
from kdnas.search.space import SearchSpace


@dataclass(frozen=True)
class LatencyProfile:
    """What :func:`profile_space` measured: the predictor fitted on every measurement, its held-out metrics, the
    measurements, and the teacher's two times: on the profiled backend, and the fp32 eager reference every
    speed-up and the reward's target are over (so they mean the same on every backend)."""

    predictor: LatencyPredictor
    metrics: dict
    measurements: list[dict]
    backend: str
    teacher_backend_ms: float
    teacher_latency_ms: float

    def to_json(self) -> dict:
        """``predictor.json``: the fit, the eager reference, the backend (absent for eager, as in predictors
        written before backends) and the measurements."""
        on_backend = {} if self.backend == "eager" else {"backend": self.backend,
                                                          "teacher_backend_ms": self.teacher_backend_ms}
        return {**self.predictor.to_dict(), "teacher_latency_ms": self.teacher_latency_ms, **on_backend,
                "measurements": self.measurements}


def profile_space(teacher, params: dict) -> LatencyProfile:
    """Times ``latency_profile.samples`` random architectures plus the teacher on ``search.latency.backend``;
    fits on all but a held-out share (for the metrics), then on every measurement."""
    cfg, lat = params["latency_profile"], params["search"]["latency"]
    head = teacher.config.hidden_size // teacher.config.num_attention_heads
    space = SearchSpace.from_params(params["space"], max_head_size=head if params["space"]["init"] == "inherit" else None)
    rng = np.random.default_rng(params["seed"])
    count = min(cfg["samples"], len(space))
    archs = [space.archs[i] for i in rng.choice(len(space), size=count, replace=False)]
    # All sampled students and the teacher are timed round-robin in one pass (``latency_profile.warmup`` and
    # ``repeats``): a machine's drift over the minutes a profile takes then shifts every model alike instead of
    # landing on whichever models were timed late, which is what made held-out MAPE vary from run to run.
    models = {arch.key: build_student(teacher, arch, init="random") for arch in archs}
    timing = dict(batch_size=lat["batch_size"], seq_len=params["latency"]["seq_len"],
                  threads=params["latency"]["threads"], warmup=cfg.get("warmup", lat["warmup"]),
                  repeats=cfg.get("repeats", lat["repeats"]))
    backend = lat["backend"]
    with tempfile.TemporaryDirectory() as workdir:
        # on an ONNX Runtime backend each random-init student is exported (and quantised) as export ships it
        timed = measure_on_backend({**models, "teacher": teacher}, backend, fusion=params["export"]["fusion"],
                                   workdir=Path(workdir), **timing)
    rows = [{"arch": arch, "latency_ms": timed[arch.key]["median_ms"]} for arch in archs]
    held = max(1, int(round(cfg["held_out"] * count)))
    fit_rows, test_rows = rows[held:], rows[:held]
    teacher_ms = timed["teacher"]["median_ms"]
    # Speed-ups are always over the fp32 teacher in eager PyTorch, what users replace: on another backend it is
    # timed too (after the round-robin, so machine drift between the two passes enters the ratio)
    reference_ms = (teacher_ms if backend == "eager"
                    else measure_interleaved({"teacher": teacher}, **timing)["teacher"]["median_ms"])
    t = teacher.config
    rows.append({"arch": Arch(t.num_hidden_layers, t.hidden_size, t.num_attention_heads, t.intermediate_size),
                 "latency_ms": teacher_ms})  # fitted too: it anchors the largest model
    hardware = hardware_identity(params["latency"]["threads"])
    predictor = LatencyPredictor.fit([r["arch"] for r in fit_rows], [r["latency_ms"] for r in fit_rows],
                                     lat["batch_size"], params["latency"]["seq_len"], hardware)
    metrics = validation_metrics([predictor.predict(r["arch"]) for r in test_rows], [r["latency_ms"] for r in test_rows])
    # how well the deterministic MAC count (search.latency.mode: analytic) ranks what this hardware measures
    metrics["analytic_spearman"] = float(spearmanr([analytic_ms(r["arch"], lat["batch_size"], params["latency"]["seq_len"])
                                                    for r in rows], [r["latency_ms"] for r in rows])[0])
    # the deployed predictor uses every measurement
    predictor = LatencyPredictor.fit([r["arch"] for r in rows], [r["latency_ms"] for r in rows],
                                     lat["batch_size"], params["latency"]["seq_len"], hardware)
    return LatencyProfile(predictor, metrics, [{"arch": r["arch"].key, "latency_ms": r["latency_ms"]} for r in rows],
                          backend, teacher_backend_ms=teacher_ms, teacher_latency_ms=reference_ms)


def latency_profile_stage(paths, params: dict) -> str:
    teacher, _ = load_model_and_tokenizer(paths.teacher)
    profile = profile_space(teacher, params)
    write_json(paths.predictor, profile.to_json())
    metrics = profile.metrics
    write_json(paths.metrics, {**metrics, "samples": len(profile.measurements),
                               "hardware": profile.predictor.hardware})
    return (f"wrote {paths.predictor}: {len(profile.measurements)} architectures timed on {profile.backend}; "
            f"held-out Spearman {metrics['spearman']:.3f}, MAPE {metrics['mape_percent']:.1f}%")
