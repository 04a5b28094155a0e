"""GLUE's official metrics (scikit-learn/scipy) and the GLUE score aggregation."""
from __future__ import annotations

import numpy as np

from kdnas.data.tasks import Task


def _metric(name: str, num_labels: int):
    # imported on use: scipy.stats and sklearn.metrics add seconds to every stage's start-up
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    return {
        "accuracy": accuracy_score,
        # GLUE's F1 (MRPC, QQP) is the positive class's; a custom task with more classes gets macro F1
        "f1": f1_score if num_labels <= 2 else lambda y, p: f1_score(y, p, average="macro", labels=range(num_labels)),
        "mcc": matthews_corrcoef,
        "pearson": lambda y, p: pearsonr(y, p)[0],
        "spearman": lambda y, p: spearmanr(y, p)[0],
    }[name]


def predictions(task: Task, logits: np.ndarray) -> np.ndarray:
    """Class indices (argmax) or regression scores from model outputs."""
    return logits[:, 0] if task.is_regression else logits.argmax(axis=1)


def glue_metrics(task: Task, labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """The task's metrics, e.g. {"accuracy": 0.91} for SST-2 or {"pearson": .., "spearman": ..} for STS-B."""
    return metrics_from_predictions(task, labels, predictions(task, logits), task.metrics)


def metrics_from_predictions(task: Task, labels: np.ndarray, preds: np.ndarray, names) -> dict[str, float]:
    """The metrics ``names`` of predicted classes or scores (see :func:`predictions`) against ``labels``."""
    if task.is_regression:  # float32 outputs: correlations of nearly constant scores need float64 sums
        preds, labels = np.asarray(preds, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    return {name: float(_metric(name, task.num_labels)(labels, preds)) for name in names}


def glue_score(main_metrics: dict[str, float], exclude: tuple[str, ...] = ()) -> float:
    """Mean of each task's main metric (GLUE's headline number), optionally leaving tasks out."""
    kept = [value for task, value in main_metrics.items() if task not in exclude]
    return float(np.mean(kept)) if kept else float("nan")


def percent_of_teacher(student: float, teacher: float) -> float:
    return 100.0 * student / teacher if teacher else float("nan")
