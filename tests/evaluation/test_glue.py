"""The GLUE fan-out's params (per-task overrides, checks) and the GLUE table on hand-made numbers."""
from __future__ import annotations

import copy
import math

import pytest
from conftest import REPO, tiny_params

from kdnas.errors import KdnasError
from kdnas.evaluation.glue_table import glue_table, task_score
from kdnas.params import ParamsError, load_params, validate_params
from kdnas.task_params import task_params


def test_task_score_is_the_mean_of_glues_official_metrics():
    assert task_score("mrpc", {"f1": 0.90, "accuracy": 0.86}) == pytest.approx(0.88)
    assert task_score("stsb", {"pearson": 0.80, "spearman": 0.78}) == pytest.approx(0.79)
    assert task_score("mnli", {"accuracy": 0.80, "accuracy_mm": 0.82}) == pytest.approx(0.81)
    assert task_score("cola", {"mcc": 0.40, "accuracy": 0.75}) == pytest.approx(0.40)  # accuracy is not GLUE's
    assert task_score("sst2", {"accuracy": 0.91}) == pytest.approx(0.91)
    with pytest.raises(KeyError):
        task_score("qqp", {"accuracy": 0.9})  # F1 missing: no silent partial score


def test_glue_table_score_with_and_without_cola_and_shares_of_the_teacher():
    table = glue_table({
        "sst2": {"teacher": {"accuracy": 0.90}, "student": {"accuracy": 0.87}},
        "cola": {"teacher": {"mcc": 0.40, "accuracy": 0.8}, "student": {"mcc": 0.30, "accuracy": 0.7}},
        "stsb": {"teacher": {"pearson": 0.86, "spearman": 0.84}, "student": {"pearson": 0.80, "spearman": 0.78}},
    })
    assert table["tasks"]["stsb"] == pytest.approx({"teacher": 0.85, "student": 0.79, "percent_of_teacher": 100 * 0.79 / 0.85})
    assert table["teacher"] == pytest.approx((0.90 + 0.40 + 0.85) / 3)
    assert table["student"] == pytest.approx((0.87 + 0.30 + 0.79) / 3)
    assert table["teacher_without_cola"] == pytest.approx(0.875)
    assert table["student_without_cola"] == pytest.approx(0.83)
    assert table["percent_of_teacher"] == pytest.approx(100 * 1.96 / 2.15)
    assert table["percent_of_teacher_without_cola"] == pytest.approx(100 * 0.83 / 0.875)
    assert table["mean_percent_of_teacher"] == pytest.approx((100 * 0.87 / 0.9 + 75 + 100 * 0.79 / 0.85) / 3)
    # a teacher with Matthews 0 (one class for every row) has no share, and the mean skips it
    table = glue_table({"sst2": {"teacher": {"accuracy": 0.90}, "student": {"accuracy": 0.81}},
                        "cola": {"teacher": {"mcc": 0.0}, "student": {"mcc": 0.0}},
                        "stsb": {"teacher": {"pearson": -0.1, "spearman": -0.1}, "student": {"pearson": -0.2, "spearman": -0.2}}})
    assert math.isnan(table["tasks"]["cola"]["percent_of_teacher"]) and math.isnan(table["tasks"]["stsb"]["percent_of_teacher"])
    assert table["mean_percent_of_teacher"] == pytest.approx(90.0) and table["student"] == pytest.approx(0.61 / 3)


def test_task_params_lay_one_tasks_overrides_over_the_search_tasks_blocks():
    params = tiny_params()
    params["glue"]["tasks"]["rte"] = {"data": {"max_length": 128}, "distill_full": {"losses": [{"name": "label", "weight": 1.0}]}}
    rte = task_params(params, "rte")
    assert rte["task"] == "rte" and "glue" not in rte
    assert rte["data"]["max_length"] == 128 and rte["data"]["train_size"] == params["data"]["train_size"]
    assert rte["distill_full"]["losses"] == [{"name": "label", "weight": 1.0}]  # lists are replaced whole
    assert rte["distill_full"]["epochs"] == params["distill_full"]["epochs"]
    assert params["data"]["max_length"] == 32 and params["task"] == "sst2"  # the caller's params are untouched
    with pytest.raises(KdnasError, match="task 'qqp' is not in glue.tasks"):
        task_params(params, "qqp")


@pytest.mark.parametrize("tasks,expected", [
    ({"sst2": {}}, "glue.tasks.sst2 repeats the search task"),
    ({"rtee": {}}, "glue.tasks.rtee: not a GLUE task (cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli) nor one of "
                   "custom_tasks (none defined)"),
    ({"rte": {"techer": {"epochs": 2}}}, "unknown key glue.tasks.rte.techer"),
    ({"rte": {"teacher": {"epochs": 0}}}, "glue.tasks.rte gives teacher.epochs = 0 is invalid"),
    ({"rte": {"data": {"max_lenght": 128}}}, "glue.tasks.rte gives unknown key data.max_lenght"),
])
def test_bad_glue_tasks_get_one_line_errors(tasks, expected):
    params = copy.deepcopy(tiny_params())
    params["glue"]["tasks"] = tasks
    with pytest.raises(ParamsError) as info:
        validate_params(params)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_full_glue_params_file_is_valid_and_covers_every_other_task():
    full = load_params(REPO / "params.glue-full.yaml")
    assert set(full["glue"]["tasks"]) | {full["task"]} == {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"}
    assert full["data"]["train_size"] is None and full["transfer"]["size"] is None
    assert task_params(full, "rte")["teacher"]["epochs"] > full["teacher"]["epochs"]


def test_the_deployed_table_scores_each_runtime_and_times_it_against_the_eager_teacher():
    """Eager scores from the GLUE table, the ONNX forms' from export (GLUE's official metrics per task), each
    beside its measured speed-up over the eager fp32 teacher; a runtime export did not score shows no score."""
    import pandas as pd

    from kdnas.evaluation.deployed import deployed_table
    from kdnas.latency.table import LatencyTable

    results = {"sst2": {"teacher": {"accuracy": 0.90}, "student": {"accuracy": 0.85}},
               "stsb": {"teacher": {"pearson": 0.80, "spearman": 0.78}, "student": {"pearson": 0.70, "spearman": 0.68}}}
    table = glue_table(results)
    export = {"sst2": {"int8": {"fp32": {"accuracy": 0.85}, "int8": {"accuracy": 0.84}}},
              "stsb": {"int8": {"fp32": {"pearson": 0.70, "spearman": 0.68}, "int8": {"pearson": 0.66, "spearman": 0.64}}}}
    arch = "L3-H384-A12-F384"
    latency = LatencyTable(pd.DataFrame([
        {"backend": b, "model": m, "batch_size": 1, "seq_len": 64, "median_ms": ms, "speedup": sp, "speedup_vs_eager": ve}
        for b, m, ms, sp, ve in (("eager", "teacher", 30.0, 1.0, 1.0), ("eager", arch, 10.0, 3.0, 3.0),
                                 ("onnxruntime", "teacher", 20.0, 1.0, 1.5), ("onnxruntime", arch, 5.0, 4.0, 6.0),
                                 ("onnxruntime-int8", "teacher", 12.0, 1.0, 2.5),
                                 ("onnxruntime-int8", arch, 3.0, 4.0, 10.0))]))
    rows = {row["runtime"]: row for row in deployed_table(table, export, {}, latency, arch)}
    assert rows["eager"]["glue_score"] == table["student"] == pytest.approx((0.85 + 0.69) / 2)
    assert rows["onnxruntime"]["glue_score"] == pytest.approx((0.85 + 0.69) / 2)
    assert rows["onnxruntime-int8"]["glue_score"] == pytest.approx((0.84 + 0.65) / 2)
    assert rows["onnxruntime-int8"]["percent_of_teacher"] == pytest.approx(100 * 0.745 / 0.845)
    assert [rows[r]["speedup_vs_eager_teacher"] for r in ("eager", "onnxruntime", "onnxruntime-int8")] == [3, 6, 10]
    assert rows["onnxruntime-int8"]["student_ms"] == 3.0
    del export["stsb"]["int8"]["int8"]["spearman"]  # a metric export did not score: no GLUE score for int8
    rows = {row["runtime"]: row for row in deployed_table(table, export, {}, latency, arch)}
    assert rows["onnxruntime-int8"]["glue_score"] is None and rows["onnxruntime"]["glue_score"] is not None
