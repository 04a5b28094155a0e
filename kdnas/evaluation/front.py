"""The searched student against the students people pick by hand, at equal latency.

The hand-crafted students (:mod:`kdnas.evaluation.baselines`) are distilled with the winner's recipe and timed in the
winner's latency run. Their scores against their measured latencies form a front: the points no other
hand-crafted student beats on both latency and score. The searched student's *margin* is its score minus the
front's score at its own latency, interpolated linearly in milliseconds between the two front members that
bracket it. A student faster than every member is compared with the fastest (``position: faster``; the
margin then understates it), one slower than every member with the slowest (``position: slower``).

Standard errors come from a paired bootstrap over dev rows: every model is scored on the same resampled
rows, and the covariance of those scores gives the variance of any margin (a fixed linear combination of
scores) on one task, and of the margin on the GLUE score, a mean over tasks resampled independently. For
MNLI the bootstrap covers the matched dev set only.
"""
from __future__ import annotations

import math
import zlib

import numpy as np

from kdnas.data.tasks import Task
from kdnas.errors import KdnasError
from kdnas.evaluation.glue_table import task_score
from kdnas.evaluation.metrics import resampled_metrics
from kdnas.latency.table import LatencyTable

BOOTSTRAP_REPLICATES = 1000


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names of the (latency, score) points that no other point beats on both, fastest first."""
    front, best = [], -math.inf
    for name in sorted(points, key=lambda n: (points[n][0], -points[n][1], n)):
        if points[name][1] > best:
            front.append(name)
            best = points[name][1]
    return front


def front_weights(points: dict[str, tuple[float, float]], latency_ms: float) -> tuple[dict[str, float], str]:
    """The front's score at ``latency_ms`` as weights on its members, and where the latency lies
    (``inside`` the front's range, or ``faster``/``slower`` than all of it)."""
    front = pareto_front(points)
    ms = [points[name][0] for name in front]
    if latency_ms < ms[0]:
        return {front[0]: 1.0}, "faster"
    if latency_ms > ms[-1]:
        return {front[-1]: 1.0}, "slower"
    for (left, left_ms), (right, right_ms) in zip(zip(front, ms), zip(front[1:], ms[1:])):
        if left_ms <= latency_ms <= right_ms:
            w = (latency_ms - left_ms) / (right_ms - left_ms)
            return {name: weight for name, weight in ((left, 1.0 - w), (right, w)) if weight > 0}, "inside"
    return {front[0]: 1.0}, "inside"  # a single-member front at exactly its latency


def front_score(points: dict[str, tuple[float, float]], latency_ms: float) -> tuple[float, dict[str, float], str]:
    """The front's score at ``latency_ms`` (linear between the two members around it), with
    :func:`front_weights`' weights and position."""
    weights, position = front_weights(points, latency_ms)
    return sum(weight * points[name][1] for name, weight in weights.items()), weights, position


def _rng(seed: int, task: str) -> np.random.Generator:
    # one stream per task: the tasks of a GLUE score are resampled independently of each other
    return np.random.default_rng([seed, zlib.crc32(task.encode())])


def bootstrap_covariance(task: Task, labels: np.ndarray, preds: dict[str, np.ndarray], seed: int,
                         replicates: int = BOOTSTRAP_REPLICATES) -> dict:
    """Covariance of the models' task scores over paired bootstrap resamples of the dev rows.

    Returns:
        {"models": names, "matrix": covariance (list of lists), "replicates": replicates}.
    """
    labels = np.asarray(labels)
    names = [metric for metric in task.official if not metric.endswith("_mm")]
    rows = _rng(seed, task.name).integers(0, len(labels), size=(replicates, len(labels)))
    scores = np.array([np.mean(list(resampled_metrics(task, labels, p, rows, names).values()), axis=0)
                       for p in preds.values()])
    matrix = np.atleast_2d(np.cov(scores))
    return {"models": list(preds), "matrix": matrix.tolist(), "replicates": replicates}


def standard_error(covariance: dict, coefficients: dict[str, float]) -> float:
    """Bootstrap standard error of sum(coefficient * score)."""
    index = {name: i for i, name in enumerate(covariance["models"])}
    c = np.zeros(len(index))
    for name, value in coefficients.items():
        c[index[name]] += value
    return float(math.sqrt(max(float(c @ np.asarray(covariance["matrix"]) @ c), 0.0)))


def compare(scores: dict[str, float], latency: LatencyTable, student_arch: str, baselines: list[str],
            covariances: list[dict]) -> dict:
    """The searched student (``scores["student"]``) against the hand-crafted front, at each eager batch size.

    Args:
        scores: ``student`` and each baseline architecture key -> score.
        latency: the latency table (the winner and the baselines measured in one run).
        student_arch: the student's architecture key (its row in ``latency``).
        baselines: the baselines' architecture keys.
        covariances: the bootstrap covariance of each task the score averages (one for a task's own score).

    Returns:
        {"bs<N>": {"margin", "se", "front_score", "student_score", "student_ms", "position", "neighbours",
        "front"}} for every eager batch size; {} without baselines.
    """
    if not baselines:
        return {}
    out = {}
    for size, ms in sorted(latency.medians("eager").items()):
        missing = [arch for arch in [student_arch, *baselines] if arch not in ms]
        if missing:
            raise KdnasError(f"no eager latency at batch {size} for {', '.join(missing)}: rerun the latency stage")
        points = {arch: (ms[arch], scores[arch]) for arch in baselines}
        front, weights, position = front_score(points, ms[student_arch])
        coefficients = {"student": 1.0, **{arch: -w for arch, w in weights.items()}}
        # the mean of T independently resampled tasks: variance sum over tasks / T^2
        se = math.sqrt(sum(standard_error(c, coefficients) ** 2 for c in covariances)) / len(covariances)
        out[f"bs{size}"] = {"margin": scores["student"] - front, "se": se, "front_score": front,
                            "student_score": scores["student"], "student_ms": ms[student_arch],
                            "position": position, "neighbours": weights, "front": pareto_front(points)}
    return out


def task_scores(task: Task, metrics: dict[str, dict]) -> dict[str, float]:
    """model -> the task's GLUE score (mean of its official metrics) from each model's metrics."""
    return {name: task_score(task, values) for name, values in metrics.items()}


def task_comparison(task: Task, metrics: dict[str, dict], preds: dict[str, np.ndarray], labels: np.ndarray,
                    latency: LatencyTable, student_arch: str, baselines: list[str], seed: int) -> dict:
    """One task's comparison (evaluate, glue_evaluate): the baselines' scores, the student's margins at each
    eager batch size, and the bootstrap covariance the GLUE stage combines over tasks."""
    if not baselines:
        return {"scores": {}, "margins": {}, "bootstrap": None}
    names = ["student", *baselines]
    scores = task_scores(task, {name: metrics[name] for name in names})
    covariance = bootstrap_covariance(task, labels, {name: preds[name] for name in names}, seed)
    return {"scores": {arch: scores[arch] for arch in baselines},
            "margins": compare(scores, latency, student_arch, baselines, [covariance]),
            "bootstrap": covariance}


def glue_comparison(results: dict[str, dict], tasks: dict[str, Task], latency: LatencyTable, student_arch: str) -> dict:
    """The margin on the GLUE score (mean over the run's tasks) from each task's evaluate metrics.

    Returns:
        {"scores": baseline -> GLUE score, "margins": as :func:`compare`}; empty when a task has no baselines.
    """
    per_task = [r.get("hand_crafted") or {} for r in results.values()]
    baselines = sorted(set.intersection(*(set(c.get("scores") or {}) for c in per_task))) if per_task else []
    if not baselines:
        return {"scores": {}, "margins": {}}
    scores = {"student": float(np.mean([task_score(tasks[t], r["student"]) for t, r in results.items()]))}
    for arch in baselines:
        scores[arch] = float(np.mean([c["scores"][arch] for c in per_task]))
    margins = compare(scores, latency, student_arch, baselines, [c["bootstrap"] for c in per_task])
    return {"scores": {arch: scores[arch] for arch in baselines}, "margins": margins}


def margin_line(margins: dict) -> str:
    """'; vs hand-crafted front: +1.20 +/- 0.80 at bs32, ...' for a stage's summary line ('' without baselines)."""
    if not margins:
        return ""
    parts = [f"{100 * m['margin']:+.2f} +/- {100 * m['se']:.2f} at {size}" + ("" if m["position"] == "inside" else
             f" ({m['position']} than every hand-crafted student)") for size, m in margins.items()]
    return "; vs the hand-crafted front (points): " + ", ".join(parts)
