"""The final distillation recipe (``distill_full``), one function for the searched student and for the
hand-crafted students it is compared with, so the comparison differs in architecture only."""
from __future__ import annotations

from kdnas.data.tasks import task_of
from kdnas.device import resolve_compute
from kdnas.distillation.losses import build_loss
from kdnas.distillation.students import build_student
from kdnas.distillation.training import train_model
from kdnas.models.arch import Arch


def distill_arch(arch: Arch, teacher, train, params: dict, importance: dict | None, checkpoint, attn: str | None):
    """Builds ``arch`` from ``teacher`` and distils it on ``train`` with the ``distill_full`` recipe: the one
    recipe of the searched student and of the hand-crafted students it is compared with.

    Returns:
        (student with sdpa attention, the loss, the training history).
    """
    task, cfg = task_of(params), params["distill_full"]
    student = build_student(teacher, arch, init=params["space"]["init"], seed=params["seed"], importance=importance)
    if attn:
        student.config._attn_implementation = attn
    loss = build_loss(cfg["losses"], temperature=cfg["temperature"], regression=task.is_regression,
                      student_config=student.config, teacher_config=teacher.config)
    history = train_model(student, train, loss, epochs=cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch_size"],
                          seed=params["seed"], weight_decay=cfg.get("weight_decay", 0.01),
                          warmup_ratio=cfg.get("warmup_ratio", 0.0), teacher=teacher, desc=f"distill {arch.key}",
                          checkpoint=checkpoint, compute=resolve_compute(params))
    student.config._attn_implementation = "sdpa"
    return student, loss, history
