"""Stage 5: careful latency of the teacher and every ranked candidate."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from kdnas.arch import Arch
from kdnas.io import atomic_path, read_json, write_json
from kdnas.latency import check_device, hardware_identity, measure_interleaved
from kdnas.pipeline.common import load_teacher
from kdnas.students import build_student


def _backend_models(models: dict, backend: str, cfg: dict, workdir: Path) -> dict:
    if backend == "eager":
        return models
    from kdnas.onnx_runtime import OrtModel, export_onnx

    return {name: OrtModel(export_onnx(model, workdir / f"{name}.onnx"), model.config.vocab_size, cfg["threads"])
            for name, model in models.items()}


def latency_table(teacher, archs: list[Arch], cfg: dict, init: str) -> pd.DataFrame:
    """One row per (backend, model, batch size): median and IQR in ms, runs, speed-up over the teacher
    on the same backend."""
    models = {"teacher": teacher}
    for arch in archs:
        models[arch.key] = build_student(teacher, arch, init=init)  # latency does not depend on the weights
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for backend in cfg.get("backends", ["eager"]):
            timed_models = _backend_models(models, backend, cfg, Path(workdir))
            for batch_size in cfg["batch_sizes"]:
                timed = measure_interleaved(timed_models, batch_size=batch_size, seq_len=cfg["seq_len"],
                                            threads=cfg["threads"], warmup=cfg["warmup"], repeats=cfg["repeats"],
                                            device=cfg.get("device", "cpu") if backend == "eager" else "cpu")
                teacher_ms = timed["teacher"]["median_ms"]
                for name, result in timed.items():
                    rows.append({"backend": backend, "model": name, **result, "speedup": teacher_ms / result["median_ms"]})
    return pd.DataFrame(rows)


def latency_stage(args, params: dict) -> str:
    cfg = params["latency"]
    check_device(cfg.get("device", "cpu"))  # before loading anything
    if "onnxruntime" in cfg.get("backends", []):
        from kdnas.onnx_runtime import require_onnxruntime

        require_onnxruntime()
    ranking = read_json(args.ranking)
    teacher, _ = load_teacher(args.teacher)
    table = latency_table(teacher, [Arch.from_key(r["arch"]) for r in ranking], cfg, params["space"]["init"])
    hardware = hardware_identity(cfg["threads"])
    for key, value in hardware.items():
        table[f"hw_{key}"] = value
    with atomic_path(args.table) as tmp:
        table.to_csv(tmp, index=False)
    speedups = {f"{row.model}@{row.backend}_bs{row.batch_size}": round(row.speedup, 3) for row in table.itertuples()
                if row.model != "teacher"}
    teacher_ms = {f"{row.backend}_bs{row.batch_size}": round(row.median_ms, 2) for row in table.itertuples()
                  if row.model == "teacher"}
    write_json(args.metrics, {"teacher_ms": teacher_ms, "speedup": speedups, "hardware": hardware})
    return f"wrote {args.table} and {args.metrics}: teacher + {len(ranking)} candidates at batch sizes {cfg['batch_sizes']}"
