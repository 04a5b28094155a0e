"""The loss registry and the weighted sum that params.yaml describes.

Each loss is an ``nn.Module`` called as ``loss(student_out, teacher_out, labels)`` where both outputs are
dicts with ``logits`` and, when the loss declares ``needs_states``, ``hidden_states`` and ``attentions``.
"""
from __future__ import annotations

import torch
from torch import nn

from kdnas.errors import KdnasError
from kdnas.registry import Registry

LOSSES = Registry("loss")


class WeightedLoss(nn.Module):
    """Sum of named, weighted loss terms; owns any trainable parts (projections) of its terms."""

    def __init__(self, terms: dict[str, nn.Module], weights: dict[str, float]):
        super().__init__()
        self.terms = nn.ModuleDict(terms)
        self.weights = weights

    @property
    def needs_states(self) -> bool:
        """True when a term needs teacher hidden states or attentions (teacher in the loop)."""
        return any(getattr(t, "needs_states", False) for t in self.terms.values())

    @property
    def needs_attentions(self) -> bool:
        return any(getattr(t, "needs_attentions", False) for t in self.terms.values())

    def forward(self, student_out: dict, teacher_out: dict, labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
        parts = {name: term(student_out, teacher_out, labels) for name, term in self.terms.items()}
        total = sum(self.weights[name] * value for name, value in parts.items())
        # detached tensors, not floats: reading a value waits for a GPU, so the training loop sums them on it
        return total, {name: value.detach() for name, value in parts.items()}

    def __str__(self) -> str:
        return " + ".join(f"{self.weights[n]:g} * {n}" for n in self.terms)


def check_loss_specs(specs: list[dict], where: str) -> None:
    """Raises a one-line error for unknown loss names or repeated entries."""
    seen = set()
    for spec in specs:
        try:
            LOSSES.get(spec["name"])
        except KdnasError as error:
            raise KdnasError(f"params: {where}: {error}") from None
        if spec["name"] in seen:
            raise KdnasError(f"params: {where}: loss {spec['name']!r} listed twice")
        seen.add(spec["name"])


def build_loss(specs: list[dict], *, temperature: float, regression: bool, student_config=None,
               teacher_config=None) -> WeightedLoss:
    """Builds the weighted sum described by a ``losses`` list from params (zero-weight terms dropped)."""
    terms, weights = {}, {}
    for spec in specs:
        if spec["weight"] == 0:
            continue
        cls = LOSSES.get(spec["name"])
        terms[spec["name"]] = cls(temperature=temperature, regression=regression, student_config=student_config,
                                  teacher_config=teacher_config, **spec.get("kwargs", {}))
        weights[spec["name"]] = float(spec["weight"])
    if not terms:
        raise KdnasError("params: every loss weight is zero; at least one loss must be on")
    return WeightedLoss(terms, weights)


def attention_implementation(block: dict, regression: bool) -> str | None:
    """``eager`` when a params block's losses read attention maps (sdpa attention returns none), else None
    (the model's default)."""
    loss = build_loss(block["losses"], temperature=block["temperature"], regression=regression)
    return "eager" if loss.needs_attentions else None
