"""Helpers the stage functions share: task data with early checks, seeding, loading the teacher."""
from __future__ import annotations

import random

import numpy as np
import torch

from kdnas.data import check_size, check_task_files, load_split, stratified_subset
from kdnas.device import CPU, Compute
from kdnas.models import check_tokenizer_matches, load_model, load_tokenizer
from kdnas.tasks import task_of


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_task_data(params: dict, splits=("train", "dev")) -> None:
    """Fails fast (one line) on a missing data folder, file or (custom task) column."""
    check_task_files(params, tuple(splits))


def full_split(params: dict, split: str):
    """A whole split of the configured task (GLUE folder, hub, or a custom task's files)."""
    return load_split(task_of(params), split, params["data"])


def task_split(params: dict, split: str, size_key: str):
    """The configured subset of a split (``data.train_size`` / ``data.dev_size``), deterministic under seed."""
    task = task_of(params)
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
