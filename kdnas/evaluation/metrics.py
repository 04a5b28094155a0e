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


def resampled_metrics(task: Task, labels: np.ndarray, preds: np.ndarray, rows: np.ndarray, names) -> dict[str, np.ndarray]:
    """The metrics ``names`` on each resample of the dev rows at once: ``rows`` is (resamples, n) row indices;
    each metric comes back as a (resamples,) array equal to :func:`metrics_from_predictions` on that resample.

    Classification metrics come from one confusion matrix per resample (scikit-learn's formulas, zero when
    undefined as scikit-learn returns); correlations from scipy along the resample axis. A loop of
    scikit-learn calls took 1.5 ms per CoLA resample and model, 1,000 resamples per model in every evaluate."""
    from scipy.stats import pearsonr, rankdata

    labels, preds = np.asarray(labels)[rows], np.asarray(preds)[rows]
    if task.is_regression:
        labels, preds = labels.astype(np.float64), preds.astype(np.float64)
        correlations = {"pearson": lambda: pearsonr(labels, preds, axis=1).statistic,
                        "spearman": lambda: pearsonr(rankdata(labels, axis=1), rankdata(preds, axis=1), axis=1).statistic}
        return {name: correlations[name]() for name in names}
    k = task.num_labels
    cells = (np.arange(len(rows))[:, None] * k + labels) * k + preds
    confusion = np.bincount(cells.ravel(), minlength=len(rows) * k * k).reshape(len(rows), k, k).astype(np.float64)
    return {name: _CONFUSION_METRICS[name](confusion) for name in names}


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator != 0)


def _f1_per_class(confusion: np.ndarray) -> np.ndarray:
    true_positive = np.diagonal(confusion, axis1=1, axis2=2)
    return _safe_divide(2 * true_positive, confusion.sum(axis=2) + confusion.sum(axis=1))


def _mcc(confusion: np.ndarray) -> np.ndarray:
    # sklearn.metrics.matthews_corrcoef's multiclass formula (Gorodkin 2004), per confusion matrix
    true_sum, pred_sum = confusion.sum(axis=2), confusion.sum(axis=1)
    correct, samples = np.trace(confusion, axis1=1, axis2=2), confusion.sum(axis=(1, 2))
    cov_true_pred = correct * samples - (true_sum * pred_sum).sum(axis=1)
    cov_pred = samples ** 2 - (pred_sum * pred_sum).sum(axis=1)
    cov_true = samples ** 2 - (true_sum * true_sum).sum(axis=1)
    return _safe_divide(cov_true_pred, np.sqrt(cov_true * cov_pred))


_CONFUSION_METRICS = {
    "accuracy": lambda c: np.trace(c, axis1=1, axis2=2) / c.sum(axis=(1, 2)),
    # GLUE's F1 is the positive class's (see _metric); a custom task with more classes gets macro F1
    "f1": lambda c: _f1_per_class(c)[:, 1] if c.shape[1] <= 2 else _f1_per_class(c).mean(axis=1),
    "mcc": _mcc,
}


def glue_score(main_metrics: dict[str, float], exclude: tuple[str, ...] = ()) -> float:
    """Mean of each task's main metric (GLUE's headline number), optionally leaving tasks out."""
    kept = [value for task, value in main_metrics.items() if task not in exclude]
    return float(np.mean(kept)) if kept else float("nan")


def percent_of_teacher(student: float, teacher: float) -> float:
    return 100.0 * student / teacher if teacher else float("nan")
