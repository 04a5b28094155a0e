"""GLUE metrics agree with scikit-learn/scipy on known inputs; aggregation on hand-made numbers."""
import numpy as np
import pytest
from conftest import GLUE_DIR
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

from kdnas.data.loading import load_glue_split
from kdnas.data.tasks import get_task
from kdnas.evaluation.metrics import (
    glue_metrics,
    glue_score,
    metrics_from_predictions,
    percent_of_teacher,
    resampled_metrics,
)

LABELS = np.array([1, 0, 1, 1, 0, 1, 0, 0])
PREDS = np.array([1, 0, 0, 1, 1, 1, 0, 0])


def _logits(preds):
    out = np.zeros((len(preds), 2), dtype=np.float32)
    out[np.arange(len(preds)), preds] = 1.0
    return out


def test_classification_metrics_match_sklearn():
    assert glue_metrics(get_task("sst2"), LABELS, _logits(PREDS)) == {"accuracy": 0.75}
    cola = glue_metrics(get_task("cola"), LABELS, _logits(PREDS))
    assert cola["mcc"] == pytest.approx(matthews_corrcoef(LABELS, PREDS)) == pytest.approx(0.5)
    mrpc = glue_metrics(get_task("mrpc"), LABELS, _logits(PREDS))
    assert mrpc["f1"] == pytest.approx(f1_score(LABELS, PREDS)) == pytest.approx(0.75)


def test_regression_metrics_match_scipy():
    gold = np.array([0.0, 1.0, 2.5, 4.0, 5.0])
    pred = np.array([[0.5], [0.7], [2.0], [4.5], [4.4]])
    got = glue_metrics(get_task("stsb"), gold, pred)
    assert got["pearson"] == pytest.approx(pearsonr(gold, pred[:, 0])[0])
    assert got["spearman"] == pytest.approx(spearmanr(gold, pred[:, 0])[0]) == pytest.approx(0.9)
    assert list(got) == ["pearson", "spearman"]


def test_glue_score_and_share_of_teacher():
    scores = {"sst2": 0.90, "cola": 0.40, "rte": 0.65}
    assert glue_score(scores) == pytest.approx(0.65)
    assert glue_score(scores, exclude=("cola",)) == pytest.approx(0.775)
    assert percent_of_teacher(0.873, 0.9) == pytest.approx(97.0)


@pytest.mark.parametrize("task, labels_of, names", [
    ("sst2", "sst2", ("accuracy", "f1")),   # F1 of the positive class (MRPC's, QQP's)
    ("cola", "cola", ("mcc", "accuracy")),
    ("mnli", "sst2", ("accuracy", "f1")),   # three classes: macro F1, as a custom task gets
    ("stsb", "stsb", ("pearson", "spearman")),
])
def test_resampled_metrics_equal_the_metrics_of_each_resample(task, labels_of, names):
    """The bootstrap's vectorised metrics equal scikit-learn's and scipy's, one resample at a time, on real dev
    labels; small resamples include the undefined cases (a single class predicted: MCC and F1 0)."""
    task = get_task(task)
    labels = load_glue_split(labels_of, "dev", str(GLUE_DIR))["label"].to_numpy()
    rng = np.random.default_rng(0)
    if task.is_regression:  # predictions rounded to halves: ties in both rankings
        preds = np.round(2 * (labels + rng.normal(0, 1, len(labels)))) / 2
    else:
        labels = labels.astype(int) + (rng.random(len(labels)) < 0.3) * (task.num_labels == 3)  # a third class
        preds = np.where(rng.random(len(labels)) < 0.75, labels, rng.integers(0, task.num_labels, len(labels)))
    for size in (len(labels), 4):
        rows = rng.integers(0, len(labels), size=(200, size))
        got = resampled_metrics(task, labels, preds, rows, names)
        for name in names:
            one_at_a_time = [metrics_from_predictions(task, labels[r], preds[r], [name])[name] for r in rows]
            np.testing.assert_allclose(got[name], one_at_a_time, rtol=1e-12, atol=1e-15, err_msg=f"{name}, n={size}")
