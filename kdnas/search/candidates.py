"""Distilling one candidate architecture on the proxy set and scoring it on proxy-dev."""
from __future__ import annotations

import zlib

import numpy as np
import torch

from kdnas.data.batching import Encoded
from kdnas.data.tasks import Task
from kdnas.device import CPU, Compute
from kdnas.distillation.losses import build_loss
from kdnas.distillation.losses.logits import LogitKD
from kdnas.distillation.students import build_student
from kdnas.distillation.training import predict, train_model
from kdnas.evaluation.metrics import glue_metrics
from kdnas.models.arch import Arch


def candidate_seed(seed: int, arch: Arch) -> int:
    """A seed per (run seed, architecture): results do not depend on evaluation order or worker."""
    return (seed * 1_000_003 + zlib.crc32(arch.key.encode())) % (2**31)


def kd_loss_on(task: Task, student_logits: np.ndarray, teacher_logits: np.ndarray) -> float:
    """Mean distillation loss against the teacher on held-out examples (lower is better)."""
    loss = LogitKD(temperature=1.0, regression=task.is_regression)  # the training term itself, at T = 1
    with torch.no_grad():
        return float(loss({"logits": torch.tensor(student_logits)}, {"logits": torch.tensor(teacher_logits)}, None))


def distill_candidate(teacher, arch: Arch, task: Task, train: Encoded, dev: Encoded, block: dict,
                      init: str, seed: int, show_progress: bool = False,
                      importance: dict | None = None, checkpoint=None, compute: Compute = CPU) -> tuple[object, dict]:
    """Builds ``arch`` from the teacher, distils it on ``train`` with the block's recipe, scores it on ``dev``,
    on ``compute``'s device and precision (the student is built on the CPU first, so it starts the same).

    ``importance``: the inheritance scores (:mod:`kdnas.distillation.importance`); None = weight magnitude.

    Returns:
        (student, result) where result has the dev metrics, ``score`` (main metric), ``kd_loss``,
        ``params``, ``train_seconds`` and ``teacher_signal`` (cached logits / cached states / teacher in the loop).
    """
    run_seed = candidate_seed(seed, arch)
    student = build_student(teacher, arch, init=init, seed=run_seed, importance=importance)
    torch.manual_seed(run_seed)  # a loss's projections start the same whatever ran before (order, worker, resume)
    loss = build_loss(block["losses"], temperature=block["temperature"], regression=task.is_regression,
                      student_config=student.config, teacher_config=teacher.config)
    if loss.needs_attentions:  # sdpa attention returns no attention maps
        student.config._attn_implementation = "eager"
    history = train_model(student, train, loss, epochs=block["epochs"], lr=block["lr"],
                          batch_size=block["batch_size"], seed=run_seed,
                          weight_decay=block.get("weight_decay", 0.01), warmup_ratio=block.get("warmup_ratio", 0.0),
                          teacher=teacher, desc=arch.key, show_progress=show_progress, checkpoint=checkpoint,
                          compute=compute)
    logits = predict(student, dev, compute=compute)
    metrics = glue_metrics(task, dev.labels, logits)
    result = {**metrics, "score": metrics[task.main_metric],
              "kd_loss": kd_loss_on(task, logits, dev.teacher_logits),
              "params": sum(p.numel() for p in student.parameters()),
              "train_seconds": history["seconds"], "teacher_signal": history["teacher_signal"]}
    return student, result
