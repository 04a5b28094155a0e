"""Stage: the transfer set for full distillation, with the teacher's logits cached once.

Distilling from cached logits costs the student's time only, so the student can learn from more rows
than the teacher was fine-tuned on: the transfer set is the teacher's training subset plus further
label-stratified rows of the training split, up to ``transfer.size``.
"""
from __future__ import annotations

import pandas as pd

from kdnas.data.batching import encode
from kdnas.data.loading import (
    check_size,
    check_task_data,
    full_split,
    stratified_subset,
)
from kdnas.data.logit_tables import write_logit_table
from kdnas.data.tasks import task_of
from kdnas.device import resolve_compute
from kdnas.distillation.training import predict, seed_everything
from kdnas.models.loading import load_model_and_tokenizer


def transfer_set(params: dict) -> pd.DataFrame:
    """The teacher's training rows first, then other rows of the split, up to ``transfer.size``."""
    task = task_of(params)
    full = full_split(params, "train")
    seed, regression = params["seed"], task.is_regression
    taught = stratified_subset(full, params["data"]["train_size"], seed, regression, keep_index=True)
    size = params["transfer"]["size"]
    check_size(size, len(full), "transfer.size", f"{task.name}'s train split")
    size = len(full) if size is None else size
    if size <= len(taught):
        return taught.head(size).reset_index(drop=True)
    extra = stratified_subset(full.drop(index=taught.index), size - len(taught), seed + 1, regression)
    return pd.concat([taught, extra]).reset_index(drop=True)


def write_transfer_table(out, params: dict, teacher, tokenizer, compute) -> pd.DataFrame:
    """The transfer set of ``params`` with ``teacher``'s logits, written to ``out``; returns its rows."""
    frame = transfer_set(params)
    logits = predict(teacher, encode(tokenizer, frame, params["data"]["max_length"]), desc="teacher logits",
                     compute=compute)
    write_logit_table(out, frame, logits)
    return frame


def transfer_stage(paths, params: dict) -> str:
    check_task_data(params, splits=("train",))
    seed_everything(params["seed"])
    compute = resolve_compute(params)
    teacher, tokenizer = load_model_and_tokenizer(paths.teacher, compute=compute)
    frame = write_transfer_table(paths.out, params, teacher, tokenizer, compute)
    taught = min(len(frame), params["data"]["train_size"] or len(frame))
    return f"wrote {paths.out}: {len(frame)} rows with teacher logits ({taught} of them the teacher's training rows)"
