"""The export stage: every task's student as a folder people can ship (HF model with labels, model card,
ONNX checked against PyTorch, and the int8 ONNX model scored on dev against the fp32 one)."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from kdnas.data.loading import task_split
from kdnas.data.tasks import Task, task_of
from kdnas.deploy.export import label_config, model_card, onnx_with_parity
from kdnas.deploy.quantize import METHODS, batches, ort_logits, quantize
from kdnas.device import resolve_compute
from kdnas.evaluation.int8_scores import Int8Result, agreement, check_drop
from kdnas.io import atomic_path, read_json, write_json
from kdnas.latency.table import LatencyTable
from kdnas.models.arch import Arch
from kdnas.models.loading import load_model_and_tokenizer, save_model
from kdnas.task_params import glue_tasks, task_params

PARITY_ROWS = 32
SCORING_BATCH = 64  # rows per ONNX Runtime call when scoring int8 against fp32 (fixed: results must not follow
                    # evaluate.batch_size, which export does not track)


def _sources(paths, params: dict) -> dict:
    """task -> (student folder, student summary, evaluate metrics, teacher metrics), the search task first."""
    out = {params["task"]: (Path(paths.student), Path(paths.summary), Path(paths.search_metrics), Path(paths.teacher_metrics))}
    for task in glue_tasks(params):
        out[task] = (Path(paths.glue_results) / task / "student" / "model",
                     Path(paths.glue_results) / task / "student" / "summary.json",
                     Path(paths.glue_metrics) / task / "evaluate.json", Path(paths.glue_metrics) / task / "teacher.json")
    return out


def int8_student(task: Task, run: dict, tokenizer, folder: Path, dev: pd.DataFrame, cfg: dict,
                 threads: int) -> Int8Result | None:
    """The int8 form of ``folder/model.onnx`` (``export.int8``: one method, or ``best`` of both on dev), scored
    through ONNX Runtime on the task's dev rows ``dev`` against the fp32 file; None for ``none``.

    Raises:
        KdnasError: int8 loses more of the main metric than ``export.int8_max_drop`` points.
    """
    from kdnas.evaluation.metrics import glue_metrics

    if cfg["int8"] == "none":
        return None
    max_len, batch = run["data"]["max_length"], SCORING_BATCH
    feeds = list(batches(tokenizer, dev, max_len, batch))
    labels = dev["label"].to_numpy()
    fp32_logits = ort_logits(folder / "model.onnx", feeds, threads)
    fp32 = glue_metrics(task, labels, fp32_logits)
    methods = METHODS if cfg["int8"] == "best" else (cfg["int8"],)
    calibration = None
    if "static" in methods:  # the teacher's training rows, which the transfer set holds
        rows = task_split(run, "train", "train_size").head(cfg["calibration_rows"])
        calibration = list(batches(tokenizer, rows, max_len, batch))
    results = []
    for method in methods:
        path = quantize(folder / "model.onnx", folder / f"model.int8-{method}.onnx", method, calibration)
        logits = ort_logits(path, feeds, threads)
        results.append(Int8Result(method, path, fp32, glue_metrics(task, labels, logits), task.main_metric,
                                  agreement(task, fp32_logits, logits)))
    # ties: the first (dynamic); an undefined metric (NaN: constant predictions) never wins
    best = max(results, key=lambda r: -math.inf if math.isnan(r.int8[task.main_metric]) else r.int8[task.main_metric])
    for result in results:
        if result is not best:
            result.path.unlink()
    best.path.rename(folder / "model.int8.onnx")
    best = Int8Result(best.method, folder / "model.int8.onnx", fp32, best.int8, best.main_metric, best.agreement,
                      tuple((r.method, r.int8[task.main_metric]) for r in results))
    check_drop(best, cfg["int8_max_drop"], task.name, len(dev))
    return best


def export_one(task_name: str, sources: tuple, params: dict, latency: LatencyTable, out: Path) -> dict:
    student_dir, summary_path, metrics_path, teacher_metrics_path = sources
    run = params if task_name == params["task"] else task_params(params, task_name)
    task = task_of(run)
    summary, metrics, teacher_metrics = read_json(summary_path), read_json(metrics_path), read_json(teacher_metrics_path)
    model, tokenizer = load_model_and_tokenizer(student_dir)
    label_config(model, task)
    save_model(model, tokenizer, out)
    dev = task_split(run, "dev", "dev_size")  # read once: the parity check's rows and int8's scoring rows
    parity = dev.head(PARITY_ROWS)
    texts = list(zip(parity["text_a"], parity["text_b"])) if len(task.text_columns) == 2 else parity["text_a"].tolist()
    diff = onnx_with_parity(model, tokenizer, texts, out / "model.onnx", run["data"]["max_length"],
                            params["latency"]["threads"], resolve_compute(params).device, params["export"]["fusion"])
    int8 = int8_student(task, run, tokenizer, out, dev, run["export"], params["latency"]["threads"])
    arch = Arch.from_dict(summary["arch"])
    arch_dims = f"{arch.layers} layer{'s' * (arch.layers > 1)}, hidden {arch.hidden}, {arch.heads} heads, FFN {arch.ffn}"
    if arch.layer_set:
        arch_dims += f", from teacher layers {', '.join(map(str, arch.layer_set))}"
    hw = latency.hardware()
    info = {"task": task_name, "arch": arch.key, "search_task": params["task"],
            "arch_dims": arch_dims, "source": task.source, "is_glue": task.is_glue, "official": task.official,
            "hub_dataset": "nyu-mll/glue" if task.is_glue else task.dataset,
            "data_dir": run["data"]["glue_dir" if task.is_glue else "custom_dir"],
            "backbone": params["teacher"]["backbone"],
            "teacher_params": metrics["teacher"]["params"], "student_params": metrics["student"]["params"],
            "teacher_train_rows": teacher_metrics["train_examples"],
            "teacher_as_given": teacher_metrics.get("used_as_given", False),
            "student_train_rows": summary["train_examples"], "max_length": run["data"]["max_length"],
            "dev_rows": teacher_metrics["dev_examples"],
            "teacher": metrics["teacher"], "student": metrics["student"],
            "latency": latency.versus_teacher(arch.key), "hardware": ", ".join(f"{k} {v}" for k, v in hw.items()),
            "onnx_max_abs_diff": diff, "parity_rows": len(parity), "fusion": params["export"]["fusion"],
            "pair": len(task.text_columns) == 2,
            "regression": task.is_regression, "int8": _int8_summary(int8),
            "params": {key: run[key] for key in ("seed", "task", "data", "teacher", "transfer", "space", "distill_full")}}
    if not task.is_glue:
        info["params"]["custom_tasks"] = {task.name: run["custom_tasks"][task.name]}
    (out / "README.md").write_text(model_card(info))
    return {"arch": arch.key, "onnx_max_abs_diff": diff, "parity_rows": len(parity), "int8": _int8_summary(int8)}


def _int8_summary(int8: Int8Result | None) -> dict | None:
    if int8 is None:
        return None
    return {"method": int8.method, "main_metric": int8.main_metric, "fp32": int8.fp32, "int8": int8.int8,
            "drop_points": round(int8.drop_points, 4), "agreement": round(int8.agreement, 4),
            "tried": dict(int8.tried),
            "bytes": int8.path.stat().st_size, "fp32_bytes": (int8.path.parent / "model.onnx").stat().st_size}


def export_stage(paths, params: dict) -> str:
    from kdnas.deploy.ort_session import require_onnxruntime

    require_onnxruntime("export (ONNX with a parity check, and the int8 model)")  # before any work
    latency = LatencyTable.read(paths.latency)
    done = {}
    with atomic_path(paths.out) as tmp:
        tmp.mkdir()
        for task, sources in _sources(paths, params).items():
            done[task] = export_one(task, sources, params, latency, Path(tmp) / task)
    write_json(paths.metrics, done)
    worst = max(d["onnx_max_abs_diff"] for d in done.values())
    int8 = ", ".join(f"{task} {d['int8']['method']} {-d['int8']['drop_points']:+.2f} points" for task, d in done.items()
                     if d["int8"])  # the change int8 makes to the main metric
    return (f"wrote {paths.out}/{{{','.join(done)}}} (HF + model card + ONNX, max |ONNX - PyTorch| {worst:.1e}"
            + (f"; int8 ONNX: {int8}" if int8 else "") + ")")
