"""MnasNet-style reward: accuracy x (latency / target)^w, w = alpha when on target, beta when slower."""
from __future__ import annotations


def reward(accuracy: float, latency_ms: float, target_ms: float, alpha: float, beta: float) -> float:
    """Higher accuracy raises the reward; higher latency lowers it (alpha, beta <= 0).

    ``alpha == beta`` is MnasNet's soft constraint; ``alpha = 0, beta = -1`` its hard one.
    """
    ratio = latency_ms / target_ms
    exponent = alpha if ratio <= 1.0 else beta
    return float(accuracy * ratio ** exponent)
