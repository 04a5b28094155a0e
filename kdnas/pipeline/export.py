"""The export stage: every task's student as a folder people can ship (HF model with labels, model card,
ONNX checked against PyTorch)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from kdnas.arch import Arch
from kdnas.device import resolve_compute
from kdnas.export import label_config, model_card, onnx_with_parity
from kdnas.glue_params import glue_tasks, task_params
from kdnas.io import atomic_path, read_json, write_json
from kdnas.models import save_model
from kdnas.pipeline.common import load_teacher, task_split
from kdnas.tasks import task_of

PARITY_ROWS = 32


def _latency_rows(latency: pd.DataFrame, arch: str) -> list[dict]:
    rows = []
    for (backend, batch), group in latency.groupby(["backend", "batch_size"], sort=True):
        by_model = group.set_index("model")
        if arch in by_model.index and "teacher" in by_model.index:
            rows.append({"backend": backend, "batch_size": int(batch), "seq_len": int(by_model.loc[arch, "seq_len"]),
                         "teacher_ms": float(by_model.loc["teacher", "median_ms"]),
                         "student_ms": float(by_model.loc[arch, "median_ms"]),
                         "speedup": float(by_model.loc[arch, "speedup"])})
    return rows


def _sources(args, params: dict) -> dict:
    """task -> (student folder, student summary, evaluate metrics, teacher metrics), the search task first."""
    out = {params["task"]: (Path(args.student), Path(args.summary), Path(args.search_metrics), Path(args.teacher_metrics))}
    for task in glue_tasks(params):
        out[task] = (Path(args.glue_results) / task / "student" / "model",
                     Path(args.glue_results) / task / "student" / "summary.json",
                     Path(args.glue_metrics) / task / "evaluate.json", Path(args.glue_metrics) / task / "teacher.json")
    return out


def export_one(task_name: str, sources: tuple, params: dict, latency: pd.DataFrame, out: Path) -> dict:
    student_dir, summary_path, metrics_path, teacher_metrics_path = sources
    run = params if task_name == params["task"] else task_params(params, task_name)
    task = task_of(run)
    summary, metrics, teacher_metrics = read_json(summary_path), read_json(metrics_path), read_json(teacher_metrics_path)
    model, tokenizer = load_teacher(student_dir)
    label_config(model, task)
    save_model(model, tokenizer, out)
    dev = task_split(run, "dev", "dev_size").head(PARITY_ROWS)
    texts = list(zip(dev["text_a"], dev["text_b"])) if len(task.text_columns) == 2 else dev["text_a"].tolist()
    diff = onnx_with_parity(model, tokenizer, texts, out / "model.onnx", run["data"]["max_length"],
                            params["latency"]["threads"], resolve_compute(params).device)
    arch = Arch.from_dict(summary["arch"])
    hw = {c[3:]: latency[c].iloc[0] for c in latency.columns if c.startswith("hw_")}
    info = {"task": task_name, "arch": arch.key, "search_task": params["task"],
            "arch_dims": f"{arch.layers} layer{'s' * (arch.layers > 1)}, hidden {arch.hidden}, {arch.heads} heads, "
                         f"FFN {arch.ffn}", "source": task.source, "is_glue": task.is_glue, "official": task.official,
            "hub_dataset": "nyu-mll/glue" if task.is_glue else task.dataset,
            "data_dir": run["data"]["glue_dir" if task.is_glue else "custom_dir"],
            "backbone": params["teacher"]["backbone"],
            "teacher_params": metrics["teacher"]["params"], "student_params": metrics["student"]["params"],
            "teacher_train_rows": teacher_metrics["train_examples"],
            "teacher_as_given": teacher_metrics.get("used_as_given", False),
            "student_train_rows": summary["train_examples"], "max_length": run["data"]["max_length"],
            "dev_rows": teacher_metrics["dev_examples"],
            "teacher": metrics["teacher"], "student": metrics["student"],
            "latency": _latency_rows(latency, arch.key), "hardware": ", ".join(f"{k} {v}" for k, v in hw.items()),
            "onnx_max_abs_diff": diff, "parity_rows": len(dev), "pair": len(task.text_columns) == 2,
            "regression": task.is_regression,
            "params": {key: run[key] for key in ("seed", "task", "data", "teacher", "transfer", "space", "distill_full")}}
    if not task.is_glue:
        info["params"]["custom_tasks"] = {task.name: run["custom_tasks"][task.name]}
    (out / "README.md").write_text(model_card(info))
    return {"arch": arch.key, "onnx_max_abs_diff": diff, "parity_rows": len(dev)}


def export_stage(args, params: dict) -> str:
    latency = pd.read_csv(args.latency)
    done = {}
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        for task, sources in _sources(args, params).items():
            done[task] = export_one(task, sources, params, latency, Path(tmp) / task)
    write_json(args.metrics, done)
    worst = max(d["onnx_max_abs_diff"] for d in done.values())
    return f"wrote {args.out}/{{{','.join(done)}}} (HF + model card + ONNX, max |ONNX - PyTorch| {worst:.1e})"
