"""Teacher hidden states and attention maps cached once on the proxy training set, under a memory budget.

Intermediate-layer losses (``hidden``, ``attention``, ``attention_relation``, ``emd``) read the teacher's
per-layer outputs. Without a cache every candidate of the search reruns the teacher on every batch; with
it the ``proxy`` stage runs the teacher once and candidates read its states. The cache holds, per
example and trimmed to its own length (so batching and padding never matter), all hidden states
(embeddings + every layer) and, only when a loss needs them, all attention maps, in float16 (the loss
difference against float32 is far below the noise of training; see tests/data/test_state_cache.py).

The size is known before any teacher run from the token counts:
``hidden: sum(n_i) x (layers + 1) x width x 2`` and ``attentions: sum(n_i^2) x layers x heads x 2`` bytes;
over ``proxy.state_cache_mb`` nothing is cached and training runs the teacher in the loop.

File: ``<split>.states.safetensors`` beside ``<split>.parquet``: ``lengths`` [N], ``hidden`` [sum n, L+1, H]
(examples concatenated in data order), ``attentions`` (flat, example i holding L x heads x n_i x n_i values).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from kdnas.data.batching import Encoded, collate, length_grouped_batches
from kdnas.device import CPU, Compute
from kdnas.errors import KdnasError
from kdnas.io import atomic_path

log = logging.getLogger(__name__)
DTYPE = torch.float16


def states_path(table_path: str | Path) -> Path:
    """Where the states of a cached split live: ``train.parquet`` -> ``train.states.safetensors``."""
    path = Path(table_path)
    return path.with_name(path.stem + ".states.safetensors")


def state_bytes(lengths: np.ndarray, config, hidden: bool, attentions: bool) -> int:
    """Bytes the cache needs for examples of these token lengths (float16)."""
    n = np.asarray(lengths, dtype=np.int64)
    size = 0
    if hidden:
        size += int(n.sum()) * (config.num_hidden_layers + 1) * config.hidden_size
    if attentions:
        size += int((n * n).sum()) * config.num_hidden_layers * config.num_attention_heads
    return size * torch.finfo(DTYPE).bits // 8


@torch.inference_mode()
def write_states(teacher, data: Encoded, path: str | Path, attentions: bool, batch_size: int = 64,
                 compute: Compute = CPU) -> None:
    """Runs the teacher once over ``data`` (on ``compute``'s device and precision) and saves its hidden states
    (and attentions) per example."""
    from safetensors.torch import save_file

    teacher.eval()
    cfg = teacher.config
    lengths = data.lengths
    starts = np.concatenate([[0], np.cumsum(lengths)])
    hidden = torch.empty((int(starts[-1]), cfg.num_hidden_layers + 1, cfg.hidden_size), dtype=DTYPE)
    per_att = lengths * lengths * cfg.num_hidden_layers * cfg.num_attention_heads
    att_starts = np.concatenate([[0], np.cumsum(per_att)])
    maps = torch.empty(int(att_starts[-1]) if attentions else 0, dtype=DTYPE)
    for index in length_grouped_batches(lengths, batch_size, seed=None):
        with compute.autocast():
            out = teacher(**compute.to_device(collate(data, index)), output_hidden_states=True,
                          output_attentions=attentions)
        states = torch.stack(out.hidden_states, dim=2).to("cpu", DTYPE)  # [B, T, L+1, H]
        if attentions:
            if not out.attentions:
                raise KdnasError("caching attentions needs the teacher loaded with attn_implementation='eager'")
            att = torch.stack(out.attentions, dim=1).to("cpu", DTYPE)  # [B, L, heads, T, T]
        for row, i in enumerate(index):
            n = int(lengths[i])
            hidden[starts[i]:starts[i + 1]] = states[row, :n].to(DTYPE)
            if attentions:
                maps[att_starts[i]:att_starts[i + 1]] = att[row, :, :, :n, :n].reshape(-1).to(DTYPE)
    tensors = {"lengths": torch.from_numpy(lengths.copy()), "hidden": hidden}
    if attentions:
        tensors["attentions"] = maps
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"heads": str(cfg.num_attention_heads)})


class TeacherStates:
    """Cached teacher states of one split, served per batch in the form the losses read."""

    def __init__(self, path: str | Path, lengths: np.ndarray):
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            self.lengths = f.get_tensor("lengths").numpy()
            if not np.array_equal(self.lengths, lengths):
                raise KdnasError(f"cached teacher states {path} do not match the tokenised rows (another "
                                 "data.max_length or tokenizer?); rerun the proxy stage")
            self.hidden = f.get_tensor("hidden")
            self.attentions = f.get_tensor("attentions") if "attentions" in f.keys() else None
            self.heads = int(f.metadata()["heads"])
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)])
        self.layers = self.hidden.shape[1] - 1
        if self.attentions is not None:
            self.att_starts = np.concatenate([[0], np.cumsum(self.lengths ** 2 * self.layers * self.heads)])

    def covers(self, needs_attentions: bool) -> bool:
        return self.attentions is not None or not needs_attentions

    def batch(self, index: np.ndarray, width: int, attentions: bool) -> dict:
        """Hidden states (and attentions) of the examples in ``index``, zero-padded to ``width`` tokens
        (the losses mask padding out) and in float32."""
        hidden = torch.zeros((len(index), width, self.layers + 1, self.hidden.shape[2]))
        maps = torch.zeros((len(index), self.layers, self.heads, width, width)) if attentions else None
        for row, i in enumerate(index):
            n = int(self.lengths[i])
            hidden[row, :n] = self.hidden[self.starts[i]:self.starts[i + 1]].float()
            if attentions:
                block = self.attentions[self.att_starts[i]:self.att_starts[i + 1]].view(self.layers, self.heads, n, n)
                maps[row, :, :, :n, :n] = block.float()
        return {"hidden_states": tuple(hidden.unbind(2)),
                "attentions": tuple(maps.unbind(1)) if attentions else None}


def attach_states(data: Encoded, table_path: str | Path) -> Encoded:
    """Attaches the split's cached teacher states, when the proxy stage wrote them."""
    path = states_path(table_path)
    if path.exists():
        data.teacher_states = TeacherStates(path, data.lengths)
    return data
