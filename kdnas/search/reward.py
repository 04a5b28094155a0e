"""MnasNet-style reward: accuracy x (latency / target)^w, w = alpha when on target, beta when slower."""
from __future__ import annotations


def reward(accuracy: float, latency_ms: float, target_ms: float, alpha: float, beta: float) -> float:
    """Higher accuracy raises the reward; higher latency lowers it (alpha, beta <= 0).

    ``alpha == beta`` is MnasNet's soft constraint; ``alpha = 0, beta = -1`` its hard one.
    """
    ratio = latency_ms / target_ms
    exponent = alpha if ratio <= 1.0 else beta
    return float(accuracy * ratio ** exponent)


def latency_target_ms(teacher_ms: float, rw: dict) -> float:
    """The latency a student must reach: the teacher's over ``search.reward.target_speedup``."""
    return teacher_ms / rw["target_speedup"]


def objective(score: float, latency_ms: float, teacher_ms: float, rw: dict) -> float:
    """What the search, distill_topk, distill_full and the benchmarks maximise: the reward of a student's score
    (a negative one, e.g. Matthews below chance, counts as 0) and latency against ``search.reward``'s target."""
    return reward(max(score, 0.0), latency_ms, latency_target_ms(teacher_ms, rw), rw["alpha"], rw["beta"])
