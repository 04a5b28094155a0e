"""Training only the word-embedding rows of the tokens the training rows contain.

The word embeddings are most of a small BERT (11.7M of the default student's 14.7M parameters) but a training
set looks up few of their rows (SST-2's 20,000 transfer rows: 10,575 of 30,522). With the whole table trainable,
every step zero-fills and adds a dense gradient for it, clips it and runs AdamW over it, which on a CPU is
memory traffic for nothing: a row no training token looks up never gets a gradient, and AdamW's only change to it
is weight decay. While :func:`seen_rows_only` is active the model's input embeddings are a table of the seen rows
(plus padding) behind an id lookup; afterwards they are written back into the full table, which is restored.

What changes against training the full table: rows of unseen tokens keep their initial values instead of
shrinking by weight decay (``(1 - lr * weight_decay) ** steps``: 0.3% over the default student's distillation);
every other tensor, seen rows included, ends bit-identical on the CPU (``tests/distillation/test_seen_vocabulary.py``).
On 2 CPU cores a distillation step of the default student took 0.84x the time, a step of the teacher's
fine-tuning 0.95x (``bench/side_by_side.py``, ``bench/out/side_by_side_summary.csv``).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from kdnas.data.batching import Encoded


class SeenRows(nn.Module):
    """An embedding of ``seen`` token ids only: ``rows[lookup[id]]``, with the full table's padding row."""

    def __init__(self, full: nn.Embedding, seen: torch.Tensor):
        super().__init__()
        device = full.weight.device
        seen = seen.to(device)
        lookup = torch.full((full.num_embeddings,), -1, dtype=torch.long, device=device)  # unseen: an index error
        self.register_buffer("lookup", lookup.index_copy_(0, seen, torch.arange(len(seen), device=device)))
        self.rows = nn.Parameter(full.weight.detach()[seen].clone())
        self.padding_idx = int(self.lookup[full.padding_idx]) if full.padding_idx is not None else None
        self.seen = seen

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(self.lookup[input_ids], self.rows, self.padding_idx)


def seen_token_ids(data: Encoded, full: nn.Embedding) -> torch.Tensor:
    """The ids the training rows contain, plus the padding id that batches add."""
    ids = {token for row in data.input_ids for token in row}
    ids.add(data.pad_id)
    if full.padding_idx is not None:
        ids.add(full.padding_idx)
    return torch.tensor(sorted(ids), dtype=torch.long)


@contextmanager
def seen_rows_only(model: nn.Module, data: Encoded) -> Iterator[None]:
    """While active, only the rows of ``data``'s tokens are parameters of ``model``'s input embeddings.

    Models whose input embeddings are not a plain :class:`torch.nn.Embedding`, or are tied to an output layer,
    train their whole table (nothing changes)."""
    full = model.get_input_embeddings()
    if type(full) is not nn.Embedding or model.get_output_embeddings() is not None:
        yield
        return
    compact = SeenRows(full, seen_token_ids(data, full))
    model.set_input_embeddings(compact)
    try:
        yield
    finally:
        with torch.no_grad():
            full.weight.data = full.weight.data.to(compact.rows.device)
            full.weight[compact.seen] = compact.rows.detach().to(full.weight.dtype)
        model.set_input_embeddings(full)
