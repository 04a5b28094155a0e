"""Stage: measure a sample of the search space on this hardware and fit the latency predictor."""
from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from kdnas.arch import Arch
from kdnas.io import write_json
from kdnas.latency import hardware_identity, measure_interleaved
from kdnas.latency_model import LatencyPredictor, analytic_ms, validation_metrics
from kdnas.models import load_model_and_tokenizer
from kdnas.search.space import SearchSpace
from kdnas.students import build_student


def profile_space(teacher, params: dict) -> tuple[LatencyPredictor, dict, list[dict]]:
    """Times ``latency_profile.samples`` random architectures plus the teacher; fits on all but a held-out share."""
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
    timed = measure_interleaved({**models, "teacher": teacher}, batch_size=lat["batch_size"],
                                seq_len=params["latency"]["seq_len"], threads=params["latency"]["threads"],
                                warmup=cfg.get("warmup", lat["warmup"]), repeats=cfg.get("repeats", lat["repeats"]))
    rows = [{"arch": arch, "latency_ms": timed[arch.key]["median_ms"]} for arch in archs]
    held = max(1, int(round(cfg["held_out"] * count)))
    fit_rows, test_rows = rows[held:], rows[:held]
    teacher_ms = timed["teacher"]["median_ms"]
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
    predictor.teacher_latency_ms = teacher_ms
    return predictor, metrics, [{"arch": r["arch"].key, "latency_ms": r["latency_ms"]} for r in rows]


def latency_profile_stage(args, params: dict) -> str:
    teacher, _ = load_model_and_tokenizer(args.teacher)
    predictor, metrics, rows = profile_space(teacher, params)
    write_json(args.predictor, {**predictor.to_dict(), "teacher_latency_ms": predictor.teacher_latency_ms,
                                "measurements": rows})
    write_json(args.metrics, {**metrics, "samples": len(rows), "hardware": predictor.hardware})
    return (f"wrote {args.predictor}: {len(rows)} architectures timed; held-out Spearman {metrics['spearman']:.3f}, "
            f"MAPE {metrics['mape_percent']:.1f}%")
