"""Training only the embedding rows the training rows look up (kdnas.distillation.seen_vocabulary), on real SST-2
rows and the real teacher: every tensor ends as training the whole table would leave it, but the rows of unseen
tokens, which keep their initial values instead of shrinking by weight decay."""
from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch
from conftest import sst2_with_teacher_logits

import kdnas.distillation.training as training
from kdnas.distillation.losses import build_loss
from kdnas.distillation.seen_vocabulary import SeenRows, seen_rows_only, seen_token_ids
from kdnas.distillation.students import build_student
from kdnas.models.arch import Arch

WORDS = "bert.embeddings.word_embeddings.weight"


@pytest.fixture(scope="module")
def setup():
    return sst2_with_teacher_logits(64, 24)


def _distil(setup, monkeypatch, seen_only: bool):
    task, teacher, data = setup
    if not seen_only:
        monkeypatch.setattr(training, "seen_rows_only", lambda model, data: nullcontext())
    student = build_student(teacher, Arch(2, 384, 12, 384), init="inherit", seed=0)
    initial = student.state_dict()[WORDS].clone()
    loss = build_loss([{"name": "logit_kd", "weight": 1.0}], temperature=1.0, regression=False)
    training.train_model(student, data, loss, epochs=2, lr=5e-3, batch_size=16, seed=0, weight_decay=0.1,
                         show_progress=False)
    monkeypatch.undo()
    return student, initial


def test_only_unseen_rows_differ_from_training_the_whole_table_and_they_keep_their_initial_values(setup, monkeypatch):
    _, _, data = setup
    whole, initial = _distil(setup, monkeypatch, seen_only=False)
    seen, _ = _distil(setup, monkeypatch, seen_only=True)
    assert type(seen.get_input_embeddings()) is torch.nn.Embedding  # the full table is back, as a plain Embedding
    ours, theirs = seen.state_dict(), whole.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        if key != WORDS:
            assert torch.equal(ours[key], theirs[key]), key
    rows = torch.zeros(len(initial), dtype=torch.bool)
    rows[seen_token_ids(data, seen.get_input_embeddings())] = True
    assert 300 < int(rows.sum()) < len(initial) // 10  # 64 sentences look up few of 30,522 rows
    assert torch.equal(ours[WORDS][rows], theirs[WORDS][rows])  # seen rows: the same updates
    assert not torch.equal(ours[WORDS][rows], initial[rows])  # ... which did train
    assert torch.equal(ours[WORDS][~rows], initial[~rows])  # unseen rows: untouched
    assert torch.all(theirs[WORDS][~rows].norm(dim=1) < initial[~rows].norm(dim=1))  # the whole table: decayed


def test_the_padding_row_gets_no_gradient_and_is_in_the_table(setup):
    _, teacher, data = setup
    student = build_student(teacher, Arch(1, 384, 12, 384), init="inherit", seed=0)
    full = student.get_input_embeddings()
    pad = full.padding_idx
    with seen_rows_only(student, data):
        compact = student.get_input_embeddings()
        assert isinstance(compact, SeenRows) and len(compact.rows) < len(full.weight) // 10
        word = data.input_ids[0][1]
        ids = torch.tensor([[data.input_ids[0][0], word, data.input_ids[0][-1], pad, pad]])
        student(input_ids=ids, attention_mask=(ids != pad).long()).logits.sum().backward()
        assert torch.equal(compact.rows.grad[compact.lookup[pad]], torch.zeros(384))
        assert compact.rows.grad[compact.lookup[word]].abs().sum() > 0
        unseen = int(torch.nonzero(compact.lookup < 0)[0])
        with pytest.raises(IndexError):  # a token the training rows lack is an error, never another token's row
            student(input_ids=torch.tensor([[unseen]]))
    assert student.get_input_embeddings() is full
