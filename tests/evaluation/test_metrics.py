"""GLUE metrics agree with scikit-learn/scipy on known inputs; aggregation on hand-made numbers."""
import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

from kdnas.data.tasks import get_task
from kdnas.evaluation.metrics import glue_metrics, glue_score, percent_of_teacher

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
