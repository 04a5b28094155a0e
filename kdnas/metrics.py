"""GLUE's official metrics (scikit-learn/scipy) and the GLUE score aggregation."""
from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from kdnas.tasks import GlueTask

_METRICS = {
    "accuracy": lambda y, p: accuracy_score(y, p),
    "f1": lambda y, p: f1_score(y, p),
    "mcc": lambda y, p: matthews_corrcoef(y, p),
    "pearson": lambda y, p: pearsonr(y, p)[0],
    "spearman": lambda y, p: spearmanr(y, p)[0],
}


def predictions(task: GlueTask, logits: np.ndarray) -> np.ndarray:
    """Class indices (argmax) or regression scores from model outputs."""
    return logits[:, 0] if task.is_regression else logits.argmax(axis=1)


def glue_metrics(task: GlueTask, labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """The task's metrics, e.g. {"accuracy": 0.91} for SST-2 or {"pearson": .., "spearman": ..} for STS-B."""
    preds = predictions(task, logits)
    return {name: float(_METRICS[name](labels, preds)) for name in task.metrics}


def glue_score(main_metrics: dict[str, float], exclude: tuple[str, ...] = ()) -> float:
    """Mean of each task's main metric (GLUE's headline number), optionally leaving tasks out."""
    kept = [value for task, value in main_metrics.items() if task not in exclude]
    return float(np.mean(kept)) if kept else float("nan")


def percent_of_teacher(student: float, teacher: float) -> float:
    return 100.0 * student / teacher if teacher else float("nan")
