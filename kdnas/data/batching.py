"""Tokenised examples, length-grouped batches and dynamic padding (the largest speed lever on CPU)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch


@dataclass
class Encoded:
    """Token ids of a split, unpadded, plus labels (and optional cached teacher logits and states)."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    labels: np.ndarray
    pad_id: int
    teacher_logits: np.ndarray | None = None
    teacher_states: object | None = None  # kdnas.data.teacher_states.TeacherStates, when the proxy stage cached them

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self))


def encode(tokenizer, frame: pd.DataFrame, max_length: int, teacher_logits: np.ndarray | None = None) -> Encoded:
    """Tokenises ``text_a`` (and ``text_b`` when present) without padding."""
    pairs = frame["text_b"].notna().any()
    texts_b = frame["text_b"].tolist() if pairs else None
    out = tokenizer(frame["text_a"].tolist(), texts_b, truncation=True, max_length=max_length,
                    return_token_type_ids=True)
    labels = frame["label"].to_numpy()
    return Encoded(out["input_ids"], out["token_type_ids"], labels, tokenizer.pad_token_id, teacher_logits)


def length_grouped_batches(lengths: np.ndarray, batch_size: int, seed: int | None, chunk: int = 2048) -> list[np.ndarray]:
    """Batches of similar-length examples with a random mix of examples per batch.

    Shuffle, cut into chunks of ``chunk`` rows, sort each chunk by length, cut into batches, shuffle
    the batch order. ``seed=None`` gives deterministic sorted batches for inference.
    """
    if seed is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(data: Encoded, index: np.ndarray) -> dict[str, torch.Tensor]:
    """Pads the selected examples to their longest member."""
    width = max(len(data.input_ids[i]) for i in index)
    ids = torch.full((len(index), width), data.pad_id, dtype=torch.long)
    types = torch.zeros((len(index), width), dtype=torch.long)
    mask = torch.zeros((len(index), width), dtype=torch.long)
    for row, i in enumerate(index):
        n = len(data.input_ids[i])
        ids[row, :n] = torch.tensor(data.input_ids[i])
        types[row, :n] = torch.tensor(data.token_type_ids[i])
        mask[row, :n] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
