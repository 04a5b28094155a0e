"""Pareto front and hypervolume of (score, latency) trade-offs: higher score and lower latency are better.

The 2-D hypervolume is the area dominated by a set of points and bounded by a reference point
(Zitzler & Thiele 1998, "Multiobjective Optimization Using Evolutionary Algorithms - A Comparative Case
Study"), computed exactly by one sweep over latency.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


def _as_points(points) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, 2)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"points must be (score, latency) pairs, got shape {array.shape}")
    return array


def pareto_front(points) -> np.ndarray:
    """Boolean mask of the non-dominated points (score up, latency down).

    A point is dominated when another has a score at least as high and a latency at least as low, and is
    strictly better in one of them; duplicates of a non-dominated point are all kept.

    Args:
        points: (n, 2) array-like of (score, latency).

    Returns:
        (n,) boolean array, True on the front.
    """
    p = _as_points(points)
    score, latency = p[:, 0], p[:, 1]
    no_worse = (score[None, :] >= score[:, None]) & (latency[None, :] <= latency[:, None])
    better = (score[None, :] > score[:, None]) | (latency[None, :] < latency[:, None])
    return ~(no_worse & better).any(axis=1)  # row i: is any j no worse and somewhere better than i?


def hypervolume(points, ref: Sequence[float]) -> float:
    """Exact 2-D hypervolume of (score, latency) points with reference (score_ref, latency_ref).

    The area of the union of rectangles [score_ref, score] x [latency, latency_ref]; points not strictly
    better than the reference in both objectives add nothing.

    Args:
        points: (n, 2) array-like of (score, latency).
        ref: (score_ref, latency_ref), a worst acceptable score and latency.

    Returns:
        The dominated area (score units x latency units), 0.0 for no useful point.
    """
    score_ref, latency_ref = float(ref[0]), float(ref[1])
    p = _as_points(points)
    p = p[(p[:, 0] > score_ref) & (p[:, 1] < latency_ref)]
    if len(p) == 0:
        return 0.0
    p = p[np.lexsort((-p[:, 0], p[:, 1]))]  # by latency, best score first among equal latencies
    # Sweep latency from fastest to latency_ref; between consecutive latencies the dominated height is the
    # best score among the points seen so far.
    area, best = 0.0, score_ref
    edges = np.append(p[1:, 1], latency_ref)
    for (score, latency), next_latency in zip(p, edges):
        best = max(best, score)
        area += (best - score_ref) * (next_latency - latency)
    return float(area)


def _trial_point(trial, score_key: str, latency_key: str) -> tuple[float, float]:
    if isinstance(trial, dict):
        return float(trial[score_key]), float(trial[latency_key])
    score, latency = trial
    return float(score), float(latency)


def hypervolume_curve(trials: Iterable, ref: Sequence[float], score_key: str = "score",
                      latency_key: str = "latency_ms") -> list[float]:
    """Hypervolume of the first i trials, for i = 1..n (an anytime measure of a search).

    Args:
        trials: trials in evaluation order, each a (score, latency) pair or a dict (a trial-log row) with
            ``score_key`` and ``latency_key``.
        ref: (score_ref, latency_ref).
        score_key: the score field of dict trials.
        latency_key: the latency field of dict trials.

    Returns:
        A non-decreasing list with one hypervolume per trial.
    """
    points = [_trial_point(t, score_key, latency_key) for t in trials]
    # Only the running front matters, so each step recomputes on the front plus the new point.
    curve, front = [], np.zeros((0, 2))
    for point in points:
        front = np.vstack([front, point])
        front = front[pareto_front(front)]
        curve.append(hypervolume(front, ref))
    return curve
