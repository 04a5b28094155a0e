"""Stage 1: fine-tune the teacher, or take an already fine-tuned one as given (``teacher.finetune: false``)."""
from __future__ import annotations

from kdnas.data.batching import encode
from kdnas.data.loading import check_task_data, task_data_files, task_split
from kdnas.data.tasks import task_of
from kdnas.device import resolve_compute
from kdnas.distillation.checkpoint import stage_checkpoint
from kdnas.distillation.losses import build_loss
from kdnas.distillation.training import predict, seed_everything, train_model
from kdnas.evaluation.metrics import glue_metrics
from kdnas.io import atomic_path, write_json
from kdnas.models.loading import (
    count_parameters,
    load_finetuned_teacher,
    load_pretrained_for_task,
    resolve_backbone,
    save_model,
    start_regression_head_at,
)
from kdnas.pipeline.manifest import MANIFEST


def teacher_stage(paths, params: dict) -> str:
    task = task_of(params)
    cfg = params["teacher"]
    if not cfg.get("finetune", True):
        return teacher_as_given(paths, params)
    check_task_data(params)
    resolve_backbone(cfg["backbone"])  # bad path: one-line error before loading any data
    checkpoint = stage_checkpoint(f"teacher/{task.name}", params, task_data_files(params, ("train",)),
                                  tracked=MANIFEST["teacher"].params)
    compute = resolve_compute(params)
    seed_everything(params["seed"])
    train, dev = task_split(params, "train", "train_size"), task_split(params, "dev", "dev_size")
    model, tokenizer = load_pretrained_for_task(cfg["backbone"], task, cfg.get("trust_remote_code", False))
    if task.is_regression:
        start_regression_head_at(model, train["label"].astype(float).mean())
    max_len = params["data"]["max_length"]
    train_enc, dev_enc = encode(tokenizer, train, max_len), encode(tokenizer, dev, max_len)
    loss = build_loss([{"name": "label", "weight": 1.0}], temperature=1.0, regression=task.is_regression)
    history = train_model(model, train_enc, loss, epochs=cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch_size"],
                          seed=params["seed"], weight_decay=cfg.get("weight_decay", 0.01),
                          warmup_ratio=cfg.get("warmup_ratio", 0.0), desc="teacher", checkpoint=checkpoint,
                          compute=compute)
    metrics = glue_metrics(task, dev_enc.labels, predict(model, dev_enc, desc="teacher dev", compute=compute))
    with atomic_path(paths.model) as tmp:
        save_model(model, tokenizer, tmp)
    write_json(paths.metrics, {"task": task.name, **metrics, "params": count_parameters(model),
                              "train_examples": len(train), "dev_examples": len(dev)})
    if checkpoint:
        checkpoint.clear()  # outputs written: nothing left to resume
    shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
    return (f"wrote {paths.model} and {paths.metrics}: dev {shown} on {len(dev)} rows after {len(train)} training rows "
            f"in {history['seconds']:.0f}s")


def teacher_as_given(paths, params: dict) -> str:
    """Scores an already fine-tuned backbone on dev and saves it (its head in the task's class order); no training."""
    task = task_of(params)
    cfg = params["teacher"]
    check_task_data(params, splits=("dev",))
    resolve_backbone(cfg["backbone"])
    compute = resolve_compute(params)
    dev = task_split(params, "dev", "dev_size")
    model, tokenizer, order = load_finetuned_teacher(cfg["backbone"], task, cfg.get("trust_remote_code", False))
    dev_enc = encode(tokenizer, dev, params["data"]["max_length"])
    metrics = glue_metrics(task, dev_enc.labels, predict(compute.place(model), dev_enc, desc="teacher dev",
                                                         compute=compute))
    with atomic_path(paths.model) as tmp:
        save_model(model, tokenizer, tmp)
    write_json(paths.metrics, {"task": task.name, **metrics, "params": count_parameters(model), "train_examples": 0,
                              "dev_examples": len(dev), "used_as_given": True, "classes": order.how})
    shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
    return (f"wrote {paths.model} and {paths.metrics}: {cfg['backbone']} used as given (classes {order.how}); "
            f"dev {shown} on {len(dev)} rows")
