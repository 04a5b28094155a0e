"""Helpers the stage functions share: task data with early checks, seeding, loading the teacher."""
from __future__ import annotations

import random

import numpy as np
import torch

from kdnas.data import check_local_split, check_size, load_split, resolve_glue_dir, stratified_subset
from kdnas.device import CPU, Compute
from kdnas.models import check_tokenizer_matches, load_model, load_tokenizer
from kdnas.tasks import get_task


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_task_data(params: dict, splits=("train", "dev")) -> None:
    """Fails fast (one line) on an unknown task or a missing local GLUE folder/file."""
    task = get_task(params["task"])
    local = resolve_glue_dir(params["data"]["glue_dir"])
    if local is not None:
        for split in splits:
            check_local_split(task, local, split)


def full_split(params: dict, split: str):
    """A whole split of the configured task, from the configured GLUE folder (or the hub)."""
    return load_split(params["task"], split, params["data"]["glue_dir"])


def task_split(params: dict, split: str, size_key: str):
    """The configured subset of a split (``data.train_size`` / ``data.dev_size``), deterministic under seed."""
    task = get_task(params["task"])
    frame = full_split(params, split)
    check_size(params["data"][size_key], len(frame), f"data.{size_key}", f"{task.name}'s {split} split")
    return stratified_subset(frame, params["data"][size_key], params["seed"], task.is_regression)


def load_teacher(path, attn_implementation: str | None = None, compute: Compute = CPU):
    """A saved model (on ``compute``'s device) and its tokenizer; refuses a tokenizer whose vocabulary the model
    cannot index."""
    model = load_model(path, attn_implementation=attn_implementation)
    tokenizer = load_tokenizer(str(path))
    check_tokenizer_matches(tokenizer, model)
    return compute.place(model), tokenizer
