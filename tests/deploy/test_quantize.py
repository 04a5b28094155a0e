"""The int8 rules that need no pipeline: the drop bound and the missing-extra message."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kdnas.deploy.ort_session import require_onnxruntime
from kdnas.errors import KdnasError
from kdnas.evaluation.int8_scores import Int8Result, check_drop


def _result(fp32: float, int8: float) -> Int8Result:
    return Int8Result("static", Path("model.int8.onnx"), {"accuracy": fp32}, {"accuracy": int8}, "accuracy", 0.97)


def test_an_int8_model_losing_more_than_the_bound_fails_export_in_one_line():
    check_drop(_result(0.8120, 0.8030), bound=1.0, task_name="sst2", rows=872)  # 0.9 points: kept
    with pytest.raises(KdnasError) as error:
        check_drop(_result(0.8120, 0.7990), bound=1.0, task_name="sst2", rows=872)
    assert str(error.value) == ("export: sst2: the int8 student (static) loses 1.30 points of accuracy "
                                "(0.8120 -> 0.7990 on 872 dev rows), more than export.int8_max_drop = 1.0")
    check_drop(_result(0.8120, 0.8200), bound=0.0, task_name="sst2", rows=872)  # a gain never fails


def test_without_onnxruntime_the_extra_to_install_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(KdnasError, match=r"^export needs the onnx extra: pip install -e '\.\[onnx\]'"):
        require_onnxruntime("export")


def test_an_int8_model_with_constant_predictions_fails_export():
    nan = float("nan")
    flat = Int8Result("static", Path("model.int8.onnx"), {"pearson": 0.24}, {"pearson": nan}, "pearson", 1.0)
    with pytest.raises(KdnasError, match=r"^export: stsb: the int8 student \(static\) leaves pearson undefined on "
                                         r"1500 dev rows \(constant predictions; fp32 ONNX: 0.2400\)$"):
        check_drop(flat, bound=1.0, task_name="stsb", rows=1500)
