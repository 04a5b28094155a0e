"""Many-to-many layer distillation with Earth Mover's Distance (BERT-EMD, Li et al., 2020).

Instead of a fixed student -> teacher layer mapping, every student layer may learn from every teacher
layer: the layer-to-layer losses form a cost matrix, an optimal transport between the student's and the
teacher's layer weights decides how much each pair counts, and the weights themselves adapt to how well
each layer is being matched ("cost attention").

Reference: Li, Lin, Xiao, Zhu, Liu, "BERT-EMD: Many-to-Many Layer Mapping for BERT Compression with
Earth Mover's Distance", EMNLP 2020 (arXiv:2010.06133); reference code https://github.com/lxk00/BERT-EMD
(``get_new_layer_weight`` in ``bert-emd/emd_task_distill.py``).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from kdnas.distillation.losses.intermediate import (
    attention_maps,
    check_equal_heads,
    make_projection,
    masked_mse,
    pair_mask,
    project,
)
from kdnas.distillation.losses.registry import LOSSES
from kdnas.errors import KdnasError


def emd_flow(cost: torch.Tensor, w_s: torch.Tensor, w_t: torch.Tensor) -> torch.Tensor:
    """Optimal transport plan between the student's and the teacher's layer weights.

    Solved exactly by POT's network simplex (``ot.emd``) in float64 on the CPU; the plan is a constant
    for the gradient (only the cost matrix carries gradients in ``sum(flow * cost)``).

    Args:
        cost: [Ls, Lt] cost matrix (detached here).
        w_s: [Ls] student layer weights, summing to 1.
        w_t: [Lt] teacher layer weights, summing to 1.

    Returns:
        The [Ls, Lt] flow, rows summing to ``w_s`` and columns to ``w_t``, in ``cost``'s dtype and device.
    """
    import ot  # POT pulls in scikit-learn (seconds): imported only when an emd loss actually runs

    a = w_s.detach().double().cpu().numpy()
    b = w_t.detach().double().cpu().numpy()
    m = cost.detach().double().cpu().numpy()
    # renormalise so float rounding never trips POT's equal-mass check
    flow = ot.emd(a / a.sum(), b / b.sum(), np.ascontiguousarray(m))
    return torch.from_numpy(flow).to(device=cost.device, dtype=cost.dtype)


def _cost_attention(transported: torch.Tensor, weights: torch.Tensor, temperature: float) -> torch.Tensor:
    """BERT-EMD's weight update for one side (see :func:`update_layer_weights`)."""
    has_mass = weights > 0
    per_mass = torch.where(has_mass, transported / torch.where(has_mass, weights, torch.ones_like(weights)),
                           torch.zeros_like(weights))
    total = per_mass.sum()
    if total <= 0:  # nothing transported at any cost: no evidence to prefer a layer
        return torch.full_like(weights, 1.0 / weights.numel())
    # inverse cost, scaled by the total; the floor caps it for a layer matched at exactly zero cost
    inverse = total / per_mass.clamp_min(total * 1e-12)
    # a layer that received no mass has no cost to judge it by: it gets the lowest score, 0, as in the
    # reference code (which leaves such entries at zero), and can regain mass through the softmax
    inverse = torch.where(has_mass, inverse, torch.zeros_like(inverse))
    return torch.softmax(inverse / temperature, dim=0)


@torch.no_grad()
def update_layer_weights(flow: torch.Tensor, cost: torch.Tensor, w_s: torch.Tensor, w_t: torch.Tensor,
                         temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-EMD's cost-attention update of the layer weights (Li et al., 2020, Sec. 3.3, Eqs. 11-13).

    For each student layer i (teacher layers likewise, summing over i instead of j):

        c_i     = sum_j flow[i, j] * cost[i, j] / w_s[i]      transported cost per unit of mass
        wbar_i  = (sum_k c_k) / c_i                           inverse cost: higher cost -> lower weight
        w_s[i]  = softmax(wbar / temperature)_i               renormalised to sum 1

    This is the rule of the reference implementation (``get_new_layer_weight``, with ``T_emd`` as the
    temperature); its optional second softmax (``add_softmax``) is not applied. Guards added here: a
    layer with zero weight (so zero mass and undefined cost) gets wbar = 0, the inverse cost is capped
    at 1e12 * sum(c) for a zero-cost layer, and all-zero costs leave the weights uniform.

    Args:
        flow: [Ls, Lt] transport plan from :func:`emd_flow`.
        cost: [Ls, Lt] cost matrix the plan was solved for.
        w_s, w_t: current student [Ls] and teacher [Lt] weights.
        temperature: softmax temperature; higher -> flatter weights.

    Returns:
        New ``(w_s, w_t)`` in float64, each summing to 1.
    """
    flow, cost = flow.detach().double().cpu(), cost.detach().double().cpu()
    transported = flow * cost
    new_s = _cost_attention(transported.sum(1), w_s.detach().double().cpu(), temperature)
    new_t = _cost_attention(transported.sum(0), w_t.detach().double().cpu(), temperature)
    return new_s, new_t


def pairwise_masked_mse(student: torch.Tensor, teacher: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """C[i, j] = weighted mean of (student[i] - teacher[j])^2, for every pair at once.

    Expands |s - t|^2 = |s|^2 + |t|^2 - 2 s.t so that the [Ls, Lt] matrix comes from one matmul instead of
    Ls * Lt full-size differences (whose activations autograd would keep).

    Args:
        student: [Ls, ...] stacked layers; teacher: [Lt, ...] with the same trailing shape.
        weights: 0/1 tensor broadcastable to the trailing shape (padding mask).
    """
    count = torch.broadcast_to(weights, student.shape[1:]).sum().clamp_min(1)
    s = (student.float() * weights).flatten(1)  # weights are 0/1, so masking once is exact for squares
    t = (teacher.float() * weights).flatten(1)
    cost = (s * s).sum(1)[:, None] + (t * t).sum(1)[None, :] - 2 * s @ t.T
    return cost.clamp_min(0) / count  # clamp: rounding can dip below zero for identical layers


@LOSSES.register(key="emd")
class EMDLoss(nn.Module):
    """BERT-EMD: many-to-many layer mapping by Earth Mover's Distance (Li et al., EMNLP 2020).

    Each step, over all encoder layers (embedding layer excluded):

    * cost ``C[i, j]`` = masked hidden-state MSE between student layer i (through a learned
      ``Linear(student_hidden, teacher_hidden)`` when the widths differ, shared by all layers, kept in this
      module) and teacher layer j; with ``attention: true`` a second cost matrix of masked attention MSEs;
    * ``flow = ot.emd(w_s, w_t, C)`` (POT), ``loss = sum(flow * C)`` (per cost matrix);
    * in training mode only, the layer weights ``w_s``, ``w_t`` (buffers, initialised uniform 1/Ls, 1/Lt)
      are updated by :func:`update_layer_weights`. With both hidden and attention costs each gives its own
      update and the weights are their mean, as in the reference code's default (``seperate=False``).

    With ``embeddings: true`` the embedding outputs add a plain MSE (layer 0 to layer 0, same projection),
    as in the reference code. Total: ``emd_hidden [+ emd_attention] [+ embedding_mse]``.

    Reference: Li et al., "BERT-EMD: Many-to-Many Layer Mapping for BERT Compression with Earth Mover's
    Distance", EMNLP 2020.

    Kwargs:
        attention: add the attention-map EMD term (needs equal head counts); default false.
        embeddings: add the embedding-layer MSE; default true.
        weight_temperature: temperature of the weight update's softmax; default 1.0.
    """

    needs_states = True

    def __init__(self, student_config=None, teacher_config=None, attention: bool = False, embeddings: bool = True,
                 weight_temperature: float = 1.0, **_):
        super().__init__()
        self.attention = bool(attention)
        self.needs_attentions = self.attention  # instance attribute: WeightedLoss reads it per term
        self.embeddings = bool(embeddings)
        self.weight_temperature = float(weight_temperature)
        if self.weight_temperature <= 0:
            raise KdnasError(f"emd loss: weight_temperature must be > 0, got {weight_temperature}")
        self.projection = make_projection(student_config, teacher_config)
        if self.attention and student_config is not None and teacher_config is not None:
            check_equal_heads(student_config.num_attention_heads, teacher_config.num_attention_heads, "emd",
                              "set attention: false for the emd loss")
        # without configs (unit tests) the layer counts are taken from the first batch
        ls = student_config.num_hidden_layers if student_config is not None else 0
        lt = teacher_config.num_hidden_layers if teacher_config is not None else 0
        self.register_buffer("w_s", torch.full((ls,), 1.0 / ls if ls else 0.0, dtype=torch.float64))
        self.register_buffer("w_t", torch.full((lt,), 1.0 / lt if lt else 0.0, dtype=torch.float64))

    def _check_layers(self, ls: int, lt: int) -> None:
        if self.w_s.numel() == 0:
            self.w_s = torch.full((ls,), 1.0 / ls, dtype=torch.float64, device=self.w_s.device)
        if self.w_t.numel() == 0:
            self.w_t = torch.full((lt,), 1.0 / lt, dtype=torch.float64, device=self.w_t.device)
        if (self.w_s.numel(), self.w_t.numel()) != (ls, lt):
            raise KdnasError(f"emd loss: built for {self.w_s.numel()} student and {self.w_t.numel()} teacher "
                             f"layers, got {ls} and {lt}")

    def forward(self, student_out, teacher_out, labels):
        s_states, t_states = student_out["hidden_states"], teacher_out["hidden_states"]
        mask = student_out["attention_mask"]
        width = t_states[0].shape[-1]
        self._check_layers(len(s_states) - 1, len(t_states) - 1)

        student = torch.stack([project(self.projection, h, width, "emd") for h in s_states[1:]])
        teacher = torch.stack([h.detach() for h in t_states[1:]])
        costs = [pairwise_masked_mse(student, teacher, mask.float().unsqueeze(-1))]
        if self.attention:
            s_atts, t_atts = attention_maps(student_out, "emd"), attention_maps(teacher_out, "emd")
            check_equal_heads(s_atts[0].shape[1], t_atts[0].shape[1], "emd", "set attention: false for the emd loss")
            costs.append(pairwise_masked_mse(torch.stack(list(s_atts)), torch.stack([a.detach() for a in t_atts]),
                                             pair_mask(mask, torch.float32)))

        total, updates = 0.0, []
        for cost in costs:
            flow = emd_flow(cost, self.w_s, self.w_t)
            total = total + (flow * cost).sum()
            if self.training:
                updates.append(update_layer_weights(flow, cost, self.w_s, self.w_t, self.weight_temperature))
        if updates:
            self.w_s.copy_(torch.stack([u[0] for u in updates]).mean(0))
            self.w_t.copy_(torch.stack([u[1] for u in updates]).mean(0))
        if self.embeddings:
            total = total + masked_mse(project(self.projection, s_states[0], width, "emd"),
                                       t_states[0].detach(), mask)
        return total
