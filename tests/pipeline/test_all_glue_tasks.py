"""Every GLUE task works as the search task and as a fan-out task. The local GLUE folder has no MNLI, QQP,
MRPC or QNLI training files, so this writes small ones in each task's documented format, with real sentence
pairs from RTE: MNLI with its 12-column train.tsv and 16-column dev_matched.tsv / dev_mismatched.tsv, QQP
with the malformed rows its train.tsv is known for, MRPC with its byte-order mark and label-first columns,
QNLI. MNLI is the search task and the other three are fanned out; every stage of dvc.yaml runs, in this
process, with the commands dvc.yaml gives it."""
from __future__ import annotations

import json

import pytest
from conftest import (
    GLUE_DIR,
    fixture_task_params,
    make_pipeline_copy,
    run_stages_in_process,
)

from kdnas.data.loading import load_glue_split
from kdnas.evaluation.glue_table import task_score

pytestmark = pytest.mark.slow

ROWS = {"train": 48, "dev": 24}
FANNED_OUT = ("qqp", "mrpc", "qnli")
QQP_MALFORMED = 2


def _pairs(start: int, count: int):
    rte = load_glue_split("rte", "train", str(GLUE_DIR))
    return rte.iloc[start:start + count].reset_index(drop=True)


def _write(path, header: str, rows: list[str], bom: bool = False):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(("\ufeff" if bom else "") + header + "\n" + "".join(row + "\n" for row in rows), encoding="utf-8")


def _mnli(glue, split: str, stem: str, start: int):
    labels = ("contradiction", "entailment", "neutral")
    rows = []
    for i, row in _pairs(start, ROWS[split]).iterrows():
        gold = "entailment" if row.label == 0 else labels[i % 2 * 2]  # not_entailment: contradiction or neutral
        parses = ["(x)"] * 4
        middle = [gold] if split == "train" else [gold] * 5
        rows.append("\t".join([str(i), str(1000 + i), f"{1000 + i}e", "fiction", *parses, row.text_a, row.text_b,
                               *middle, gold]))
    head = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
            "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1"]
    head += [] if split == "train" else ["label2", "label3", "label4", "label5"]
    _write(glue / "MNLI" / f"{stem}.tsv", "\t".join(head + ["gold_label"]), rows)


def _qqp(glue, split: str, start: int):
    rows = [f"{i}\t{2 * i}\t{2 * i + 1}\t{row.text_a}\t{row.text_b}\t{int(row.label == 0)}"
            for i, row in _pairs(start, ROWS[split]).iterrows()]
    if split == "train":  # QQP's known malformed rows: a question broken over two lines
        rows[5:5] = ["201841\t303951\t303952\tHow can I", "learn to cook?\tWhat is cooking?\t0"][:QQP_MALFORMED]
    _write(glue / "QQP" / f"{split}.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", rows)


def _mrpc(glue, split: str, start: int):
    rows = [f"{int(row.label == 0)}\t{100 + i}\t{200 + i}\t{row.text_a}\t{row.text_b}"
            for i, row in _pairs(start, ROWS[split]).iterrows()]
    _write(glue / "MRPC" / f"{split}.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", rows, bom=True)


def _qnli(glue, split: str, start: int):
    rows = [f"{i}\t{row.text_a}\t{row.text_b}\t{('entailment', 'not_entailment')[row.label]}"
            for i, row in _pairs(start, ROWS[split]).iterrows()]
    _write(glue / "QNLI" / f"{split}.tsv", "index\tquestion\tsentence\tlabel", rows)


def _fixtures(glue):
    _mnli(glue, "train", "train", 0)
    _mnli(glue, "dev", "dev_matched", 100)
    _mnli(glue, "dev", "dev_mismatched", 200)
    for split, start in (("train", 300), ("dev", 400)):
        _qqp(glue, split, start)
        _mrpc(glue, split, start + 200)
        _qnli(glue, split, start + 400)


def _params(glue) -> dict:
    params = fixture_task_params("mnli", FANNED_OUT)
    params["data"]["glue_dir"] = str(glue)
    return params


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("all_tasks") / "project"
    glue = root.parent / "glue"
    _fixtures(glue)
    params = _params(glue)
    make_pipeline_copy(root, params)
    run_stages_in_process(root, params)
    return root, params


def _json(path):
    return json.loads(path.read_text())


def test_every_task_reaches_the_glue_table_with_its_official_metrics(project):
    root, params = project
    glue = _json(root / "metrics/glue.json")
    assert list(glue["tasks"]) == ["mnli", *FANNED_OUT]
    results = {"mnli": _json(root / "metrics/evaluate.json")}
    results.update({task: _json(root / f"metrics/glue/{task}/evaluate.json") for task in FANNED_OUT})
    # MNLI as the search task is scored on matched and mismatched dev; QQP and MRPC by F1 and accuracy
    assert {"accuracy", "accuracy_mm"} <= set(results["mnli"]["student"])
    for task in ("qqp", "mrpc"):
        assert {"f1", "accuracy"} <= set(results[task]["student"])
    for task, result in results.items():
        for model in ("teacher", "student"):
            assert glue["tasks"][task][model] == pytest.approx(task_score(task, result[model])), (task, model)
    assert results["mnli"]["dev_examples"] == ROWS["dev"]


def test_each_format_is_read_as_documented(project):
    root, params = project
    glue = params["data"]["glue_dir"]
    # QQP: the two malformed lines are skipped, every other row kept
    assert len(load_glue_split("qqp", "train", glue)) == ROWS["train"]
    assert _json(root / "metrics/glue/qqp/teacher.json")["train_examples"] == ROWS["train"]
    # MRPC: the byte-order mark is not part of any text; the label comes first
    mrpc = load_glue_split("mrpc", "dev", glue)
    pairs = _pairs(600, ROWS["dev"])
    assert mrpc["text_a"].tolist() == pairs["text_a"].tolist()
    assert mrpc["label"].tolist() == [int(label == 0) for label in pairs["label"]]
    # MNLI: the gold label is the last column in both the 12-column train and the 16-column dev files
    assert set(load_glue_split("mnli", "dev_mismatched", glue)["label"]) == {0, 1, 2}


def test_exports_name_every_tasks_labels(project):
    root, _ = project
    names = {task: _json(root / f"export/{task}/config.json")["id2label"] for task in ("mnli", *FANNED_OUT)}
    assert names["mnli"] == {"0": "contradiction", "1": "entailment", "2": "neutral"}
    assert names["qnli"] == {"0": "entailment", "1": "not_entailment"}
    assert set(_json(root / "metrics/export.json")) == {"mnli", *FANNED_OUT}
