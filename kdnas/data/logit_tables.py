"""Examples with cached teacher logits, stored as parquet tables (one row per example)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from kdnas.data.batching import Encoded, encode
from kdnas.data.teacher_states import attach_states
from kdnas.io import atomic_path

TEACHER_FINGERPRINT = "teacher_fingerprint"  # the key a proxy folder's states.json records it under


def teacher_fingerprint(model_dir: str | Path) -> str:
    """A short hash of a saved teacher's weights: a folder of cached logits records the teacher they came from."""
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).glob("*.safetensors")) or sorted(Path(model_dir).glob("*.bin")):
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def write_logit_table(path: str | Path, frame: pd.DataFrame, logits: np.ndarray) -> None:
    table = frame[["text_a", "text_b", "label"]].copy()
    for c in range(logits.shape[1]):
        table[f"teacher_logit_{c}"] = logits[:, c]
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, index=False)


def read_logit_table(path: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    table = pd.read_parquet(path)
    columns = sorted((c for c in table.columns if c.startswith("teacher_logit_")), key=lambda c: int(c.rsplit("_", 1)[1]))
    return table[["text_a", "text_b", "label"]], table[columns].to_numpy(dtype=np.float32)


def load_encoded(path: str | Path, tokenizer, max_length: int) -> Encoded:
    """A cached split, tokenised, with its teacher logits and, when cached beside it, teacher states."""
    frame, logits = read_logit_table(path)
    return attach_states(encode(tokenizer, frame, max_length, teacher_logits=logits), path)
