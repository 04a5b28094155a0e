"""Stage 5: careful latency of the teacher, every ranked candidate and the hand-crafted students."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from kdnas.distillation.students import build_student
from kdnas.evaluation.baselines import hand_crafted_archs
from kdnas.io import atomic_path, read_json, write_json
from kdnas.latency.measure import check_device, hardware_identity, measure_on_backend
from kdnas.models.arch import Arch
from kdnas.models.loading import load_model_and_tokenizer


def latency_table(teacher, archs: list[Arch], cfg: dict, init: str, fusion: str = "none") -> pd.DataFrame:
    """One row per (backend, model, batch size): median and IQR in ms, runs, speed-up over the teacher on the
    same backend (``speedup``) and over the fp32 teacher in eager PyTorch (``speedup_vs_eager``). ONNX
    Runtime times each model's graph in the form ``fusion`` (``export.fusion``) gives it.

    Students of one shape (``Arch.shape``: they differ only in which teacher layers they inherit) run the same
    computation, so the shape is timed once and each of them gets its row: timed apart, two copies differed by
    4% at batch 1, noise that a margin at equal latency would read as a difference."""
    timed_as = {arch.key: arch.shape.key for arch in archs}
    models = {"teacher": teacher}
    for arch in archs:
        if arch.shape.key not in models:  # latency depends on neither the weights nor the layers inherited
            models[arch.shape.key] = build_student(teacher, arch.shape, init=init)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for backend in cfg.get("backends", ["eager"]):
            for batch_size in cfg["batch_sizes"]:
                timed = measure_on_backend(models, backend, fusion=fusion, workdir=Path(workdir),
                                           batch_size=batch_size, seq_len=cfg["seq_len"], threads=cfg["threads"],
                                           warmup=cfg["warmup"], repeats=cfg["repeats"],
                                           device=cfg.get("device", "cpu"))
                teacher_ms = timed["teacher"]["median_ms"]
                for name in ["teacher", *timed_as]:
                    result = timed[timed_as.get(name, name)]
                    rows.append({"backend": backend, "model": name, **result, "speedup": teacher_ms / result["median_ms"]})
    table = pd.DataFrame(rows)
    eager = table[table["backend"] == "eager"].query("model == 'teacher'").set_index("batch_size")["median_ms"]
    table["speedup_vs_eager"] = table["batch_size"].map(eager) / table["median_ms"]
    return table


def latency_stage(paths, params: dict) -> str:
    cfg = params["latency"]
    check_device(cfg.get("device", "cpu"))  # before loading anything
    ort_backends = [backend for backend in cfg.get("backends", []) if backend != "eager"]
    if ort_backends:
        from kdnas.deploy.ort_session import require_onnxruntime

        require_onnxruntime(f"latency backend {ort_backends[0]!r}")
    ranking = read_json(paths.ranking)
    teacher, _ = load_model_and_tokenizer(paths.teacher)
    candidates = [Arch.from_key(r["arch"]) for r in ranking]
    # the hand-crafted students are timed in the same interleaved run, so margins compare like with like
    baselines = [arch for arch in hand_crafted_archs(teacher.config, params["baselines"]) if arch not in candidates]
    table = latency_table(teacher, candidates + baselines, cfg, params["space"]["init"], params["export"]["fusion"])
    hardware = hardware_identity(cfg["threads"])
    for key, value in hardware.items():
        table[f"hw_{key}"] = value
    with atomic_path(paths.table) as tmp:
        table.to_csv(tmp, index=False)
    speedups = {f"{row.model}@{row.backend}_bs{row.batch_size}": round(row.speedup, 3) for row in table.itertuples()
                if row.model != "teacher"}
    teacher_ms = {f"{row.backend}_bs{row.batch_size}": round(row.median_ms, 2) for row in table.itertuples()
                  if row.model == "teacher"}
    write_json(paths.metrics, {"teacher_ms": teacher_ms, "speedup": speedups, "hardware": hardware})
    return f"wrote {paths.table} and {paths.metrics}: teacher + {len(ranking)} candidates + {len(baselines)} hand-crafted students at batch sizes {cfg['batch_sizes']}"
