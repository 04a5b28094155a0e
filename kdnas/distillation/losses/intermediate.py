"""Intermediate-layer distillation losses: hidden states, attention maps and self-attention relations.

All three read the per-layer outputs that HF returns with ``output_hidden_states=True`` (and
``output_attentions=True`` for ``attention``), so they set ``needs_states`` and the training loop runs the
teacher in the loop. Padding never contributes: every average is over real tokens only.

Layers are numbered as in ``hidden_states``: 0 is the embedding output, 1..L the encoder layers.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from kdnas.distillation.losses.registry import LOSSES
from kdnas.errors import KdnasError

MAPPINGS = ("uniform", "last", "uniform+last")


def layer_mapping(num_student: int, num_teacher: int, mapping: str) -> list[list[int]]:
    """Which teacher layers each student layer learns from.

    Layers are 1-based encoder layers (``hidden_states`` indices; the embedding layer 0 is handled
    separately). Entry ``i - 1`` lists the teacher layers for student layer ``i``; an empty list means
    that student layer gets no target.

    * ``uniform``: student layer i <- teacher layer floor(i * Lt / Ls) (TinyBERT's uniform strategy,
      Jiao et al., 2020); the last student layer always maps to the last teacher layer.
    * ``last``: only the last student layer, <- the last teacher layer.
    * ``uniform+last``: student layer i <- teacher layers floor(i * Lt / Ls) and Lt - Ls + i, averaged
      by the loss (uniform spacing plus the "last layers" strategy of PKD, Sun et al., 2019);
      a layer that both rules pick is listed once.

    When the student is deeper than the teacher, indices below 1 are clamped to teacher layer 1.

    Args:
        num_student: Ls, the student's number of encoder layers.
        num_teacher: Lt, the teacher's number of encoder layers.
        mapping: one of ``uniform``, ``last``, ``uniform+last``.

    Returns:
        A list of Ls lists of teacher layer indices in 1..Lt.

    Raises:
        KdnasError: for an unknown mapping.
    """
    if mapping not in MAPPINGS:
        raise KdnasError(f"unknown layer mapping {mapping!r}; expected one of: {', '.join(MAPPINGS)}")
    if num_student < 1 or num_teacher < 1:
        raise KdnasError(f"layer mapping needs at least one layer each (student {num_student}, "
                         f"teacher {num_teacher})")
    result = []
    for i in range(1, num_student + 1):
        uniform = max(1, i * num_teacher // num_student)
        if mapping == "uniform":
            result.append([uniform])
        elif mapping == "last":
            result.append([num_teacher] if i == num_student else [])
        else:
            last = max(1, num_teacher - num_student + i)
            result.append([uniform] if last == uniform else [uniform, last])
    return result


def masked_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over real tokens only.

    Args:
        student, teacher: [B, T, H] tensors of the same shape.
        mask: [B, T], 1 for real tokens.
    """
    weights = mask.to(student.dtype).unsqueeze(-1)
    count = weights.sum() * student.shape[-1]
    return ((student - teacher) ** 2 * weights).sum() / count.clamp_min(1)


def masked_attention_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE between attention maps over (real query, real key) pairs only.

    Args:
        student, teacher: [B, heads, T, T] attention probabilities.
        mask: [B, T], 1 for real tokens.
    """
    pair = pair_mask(mask, student.dtype)  # [B, 1, T, T]
    count = pair.sum() * student.shape[1]
    return ((student - teacher) ** 2 * pair).sum() / count.clamp_min(1)


def pair_mask(mask: torch.Tensor, dtype) -> torch.Tensor:
    """[B, 1, T, T] mask of (real query, real key) pairs from a [B, T] token mask."""
    m = mask.to(dtype)
    return (m[:, :, None] * m[:, None, :]).unsqueeze(1)


def make_projection(student_config, teacher_config) -> nn.Module | None:
    """A learned ``Linear(student_hidden, teacher_hidden)`` when the widths differ, else None (identity).

    With no configs (unit tests only) the widths are assumed equal; a mismatch then fails at the first call.
    """
    if student_config is None or teacher_config is None:
        return None
    if student_config.hidden_size == teacher_config.hidden_size:
        return None
    return nn.Linear(student_config.hidden_size, teacher_config.hidden_size)


def project(projection: nn.Module | None, hidden: torch.Tensor, teacher_width: int, loss_name: str) -> torch.Tensor:
    """Applies the projection, or checks that the widths already match."""
    if projection is not None:
        return projection(hidden)
    if hidden.shape[-1] != teacher_width:
        raise KdnasError(f"{loss_name} loss: student width {hidden.shape[-1]} != teacher width {teacher_width} "
                         "and no projection was built (pass student_config and teacher_config)")
    return hidden


@LOSSES.register(key="hidden")
class HiddenStateLoss(nn.Module):
    """MSE between mapped student and teacher hidden states (TinyBERT, Jiao et al., 2020, Eq. 8).

    ``L = mean over mapped student layers i of mean over its teacher layers j of MSE(h_i^S W_h, h_j^T)``,
    averaged over real tokens only. ``W_h`` is one learned ``Linear(student_hidden, teacher_hidden)``
    shared by all layers (including the embedding layer), created only when the widths differ; it lives
    in this module, never in the student. Averaging (not summing) over layers keeps the scale of the
    loss independent of the student's depth, so one loss weight suits every architecture in a search.

    Reference: Jiao et al., "TinyBERT: Distilling BERT for Natural Language Understanding",
    Findings of EMNLP 2020.

    Kwargs (params ``losses[].kwargs``):
        mapping: ``uniform`` (default), ``last`` or ``uniform+last``; see :func:`layer_mapping`.
        embeddings: also match the embedding outputs (layer 0 to layer 0); default false.
    """

    needs_states = True

    def __init__(self, student_config=None, teacher_config=None, mapping: str = "uniform",
                 embeddings: bool = False, **_):
        super().__init__()
        if mapping not in MAPPINGS:
            raise KdnasError(f"hidden loss: unknown mapping {mapping!r}; expected one of: {', '.join(MAPPINGS)}")
        self.mapping = mapping
        self.embeddings = bool(embeddings)
        self.projection = make_projection(student_config, teacher_config)

    def forward(self, student_out, teacher_out, labels):
        s_states, t_states = student_out["hidden_states"], teacher_out["hidden_states"]
        mask = student_out["attention_mask"]
        width = t_states[0].shape[-1]
        targets = layer_mapping(len(s_states) - 1, len(t_states) - 1, self.mapping)
        terms = []
        if self.embeddings:
            terms.append(masked_mse(project(self.projection, s_states[0], width, "hidden"),
                                    t_states[0].detach(), mask))
        for i, teacher_layers in enumerate(targets, start=1):
            if not teacher_layers:
                continue
            student = project(self.projection, s_states[i], width, "hidden")
            terms.append(torch.stack([masked_mse(student, t_states[j].detach(), mask)
                                      for j in teacher_layers]).mean())
        return torch.stack(terms).mean()


def attention_maps(out: dict, loss_name: str) -> tuple:
    """The per-layer attention maps of a model output, or a one-line error when the model returned none."""
    maps = out.get("attentions")
    if not maps:  # None, or () from sdpa attention, which cannot return attention maps
        raise KdnasError(f"{loss_name} loss needs attention maps, but the model returned none; "
                         "run student and teacher with attn_implementation='eager'")
    return tuple(maps)


def check_equal_heads(student_heads: int, teacher_heads: int, loss_name: str, hint: str) -> None:
    if student_heads != teacher_heads:
        raise KdnasError(f"{loss_name} loss needs equal attention head counts (student {student_heads}, "
                         f"teacher {teacher_heads}); {hint}")


@LOSSES.register(key="attention")
class AttentionLoss(nn.Module):
    """MSE between attention distributions of uniformly mapped layers (TinyBERT, Jiao et al., 2020, Eq. 7).

    Student layer i learns from teacher layer floor(i * Lt / Ls), head by head; the loss is the mean over
    layers of the MSE over (real query, real key) pairs. TinyBERT matches pre-softmax scores; HF returns
    post-softmax probabilities, which are used here (padded keys then hold zero probability on both sides).
    Needs equal head counts; for different head counts use ``attention_relation``.

    Reference: Jiao et al., "TinyBERT: Distilling BERT for Natural Language Understanding",
    Findings of EMNLP 2020.

    Kwargs: none.
    """

    needs_states = True
    needs_attentions = True
    _hint = "use the attention_relation loss, which allows different head counts"

    def __init__(self, student_config=None, teacher_config=None, **_):
        super().__init__()
        if student_config is not None and teacher_config is not None:
            check_equal_heads(student_config.num_attention_heads, teacher_config.num_attention_heads,
                              "attention", self._hint)

    def forward(self, student_out, teacher_out, labels):
        s_atts, t_atts = attention_maps(student_out, "attention"), attention_maps(teacher_out, "attention")
        mask = student_out["attention_mask"]
        check_equal_heads(s_atts[0].shape[1], t_atts[0].shape[1], "attention", self._hint)
        targets = layer_mapping(len(s_atts), len(t_atts), "uniform")
        return torch.stack([masked_attention_mse(s_atts[i - 1], t_atts[j - 1].detach(), mask)
                            for i, (j,) in enumerate(targets, start=1)]).mean()


def relation_heads_for(student_width: int, teacher_width: int, requested: int | None) -> int:
    """Number of relation heads: ``requested`` if given (it must divide both widths), else 12 when it divides
    both, else the largest divisor of gcd(widths) not above 12."""
    if requested is not None:
        if requested < 1 or student_width % requested or teacher_width % requested:
            raise KdnasError(f"attention_relation loss: relation_heads {requested} must divide both hidden "
                             f"sizes (student {student_width}, teacher {teacher_width})")
        return requested
    common = math.gcd(student_width, teacher_width)
    return max(d for d in range(1, 13) if common % d == 0)


def self_relation_log_probs(hidden: torch.Tensor, mask: torch.Tensor, heads: int) -> torch.Tensor:
    """log softmax(h h^T / sqrt(d)) per relation head, padded keys excluded.

    Args:
        hidden: [B, T, H]; split into ``heads`` chunks of d = H / heads.
        mask: [B, T], 1 for real tokens.

    Returns:
        [B, heads, T, T] log-probabilities over keys (padded keys get a huge negative value, probability 0).
    """
    b, t, width = hidden.shape
    d = width // heads
    h = hidden.view(b, t, heads, d).transpose(1, 2)  # [B, heads, T, d]
    scores = h @ h.transpose(-1, -2) / math.sqrt(d)
    # a finite fill (not -inf) keeps 0 * (log p_t - log p_s) at zero instead of NaN
    scores = scores.masked_fill(~mask.bool()[:, None, None, :], torch.finfo(scores.dtype).min / 2)
    return F.log_softmax(scores, dim=-1)


@LOSSES.register(key="attention_relation")
class AttentionRelationLoss(nn.Module):
    """Self-relation transfer on the last layer's hidden states, MiniLM style (Wang et al., 2020; 2021).

    MiniLM transfers the last layer's self-attention distributions and value relations
    (softmax(V V^T / sqrt(d))); MiniLMv2 generalises this to relations between queries, keys and values
    split into a common number of *relation heads*, which removes the need for equal head counts and
    widths. The training loop exposes hidden states and attention probabilities but not Q/K/V, so this is
    the value-free variant on hidden states: the last student and last teacher hidden states are split into
    R relation heads, and per head

        rel = softmax(h h^T / sqrt(d_rel)),  d_rel = width / R,

    over real keys only. The loss is KL(rel_teacher || rel_student), summed over keys and averaged over
    real query tokens and relation heads. Relations are T x T whatever the width, so no projection is
    needed and student and teacher may differ in width and head count.

    References: Wang et al., "MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of
    Pre-Trained Transformers", NeurIPS 2020; Wang et al., "MiniLMv2: Multi-Head Self-Attention Relation
    Distillation for Compressing Pretrained Transformers", Findings of ACL 2021.

    Kwargs:
        relation_heads: R; must divide both hidden sizes. Default: 12 when it divides both, else the
            largest divisor of gcd(student_hidden, teacher_hidden) not above 12.
    """

    needs_states = True

    def __init__(self, student_config=None, teacher_config=None, relation_heads: int | None = None, **_):
        super().__init__()
        self.requested_heads = None if relation_heads is None else int(relation_heads)
        if student_config is not None and teacher_config is not None:
            relation_heads_for(student_config.hidden_size, teacher_config.hidden_size, self.requested_heads)

    def forward(self, student_out, teacher_out, labels):
        student = student_out["hidden_states"][-1]
        teacher = teacher_out["hidden_states"][-1].detach()
        mask = student_out["attention_mask"]
        heads = relation_heads_for(student.shape[-1], teacher.shape[-1], self.requested_heads)
        log_s = self_relation_log_probs(student, mask, heads)
        log_t = self_relation_log_probs(teacher, mask, heads)
        keys = mask.bool()[:, None, None, :]
        kl = (log_t.exp() * (log_t - log_s)).masked_fill(~keys, 0.0).sum(-1)  # [B, heads, T]
        queries = mask.to(kl.dtype)[:, None, :]
        return (kl * queries).sum() / (queries.sum() * heads).clamp_min(1)
