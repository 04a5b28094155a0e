"""Your own task, defined in params by its files and columns: one in each format kdnas reads, made here from
real GLUE rows. ``reviews`` (CSV, one text column, SST-2 sentences, classes named and listed in the reverse of
SST-2's order) is the search task; ``entail`` (TSV, a sentence pair, RTE) and ``similarity`` (JSON Lines,
regression, STS-B) are fanned out. Every stage of dvc.yaml runs, in this process, with the commands dvc.yaml
gives it; then the exported models are loaded with transformers' pipeline, and DVC is asked what an edited
data file reruns. The bad definitions below each get one line."""
from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest
import yaml
from conftest import (
    GLUE_DIR,
    REPO,
    fixture_task_params,
    make_pipeline_copy,
    run,
    run_stages_in_process,
    write_params,
)

from kdnas.data.loading import (
    DataError,
    check_task_files,
    custom_frame,
    hub_records,
    load_glue_split,
    load_split,
    task_split,
)
from kdnas.data.tasks import task_of
from kdnas.errors import KdnasError
from kdnas.params import ParamsError, validate_params
from kdnas.task_params import task_params

ROWS = {"train": 64, "dev": 32}
FANNED_OUT = ("entail", "similarity")
TASKS = {
    "reviews": {"train_file": "reviews/train.csv", "validation_file": "reviews/dev.csv",
                "text_columns": ["review"], "label_column": "sentiment", "labels": ["positive", "negative"],
                "metrics": ["accuracy", "f1"]},
    "entail": {"train_file": "entail/train.tsv", "validation_file": "entail/dev.tsv",
               "text_columns": ["premise", "hypothesis"], "label_column": "answer", "labels": ["yes", "no"],
               "metrics": ["mcc", "accuracy"]},
    "similarity": {"train_file": "similarity/train.jsonl", "validation_file": "similarity/dev.jsonl",
                   "text_columns": ["first", "second"], "label_column": "score", "regression": True,
                   "metrics": ["spearman", "pearson"]},
}


def _glue_rows(task: str, split: str):
    return load_glue_split(task, split, str(GLUE_DIR)).head(ROWS[split]).reset_index(drop=True)


def _write_files(data) -> None:
    """Each task's files, from GLUE's rows, in its own format, with an extra column no task reads."""
    for split in ROWS:
        (data / "reviews").mkdir(parents=True, exist_ok=True)
        sst2 = _glue_rows("sst2", split)
        pd.DataFrame({"id": range(len(sst2)), "review": sst2["text_a"],
                      "sentiment": sst2["label"].map({0: "negative", 1: "positive"})}
                     ).to_csv(data / "reviews" / f"{split}.csv", index=False)
        (data / "entail").mkdir(exist_ok=True)
        rte = _glue_rows("rte", split)  # RTE's class 0 is entailment
        pd.DataFrame({"premise": rte["text_a"], "hypothesis": rte["text_b"], "answer": rte["label"].map({0: "yes", 1: "no"}),
                      "source": "rte"}).to_csv(data / "entail" / f"{split}.tsv", sep="\t", index=False)
        (data / "similarity").mkdir(exist_ok=True)
        stsb = _glue_rows("stsb", split)
        pd.DataFrame({"first": stsb["text_a"], "second": stsb["text_b"], "score": stsb["label"]}
                     ).to_json(data / "similarity" / f"{split}.jsonl", orient="records", lines=True)


def _params() -> dict:
    params = fixture_task_params("reviews", FANNED_OUT)
    params["custom_tasks"] = json.loads(json.dumps(TASKS))
    return params


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("custom") / "project"
    params = _params()
    make_pipeline_copy(root, params)
    _write_files(root / "data")
    run_stages_in_process(root, params)
    return root, params


def _json(path):
    return json.loads(path.read_text())


@pytest.mark.slow
def test_each_custom_task_is_scored_by_the_metrics_it_declares(project):
    root, _ = project
    results = {"reviews": _json(root / "metrics/evaluate.json")}
    results.update({task: _json(root / f"metrics/glue/{task}/evaluate.json") for task in FANNED_OUT})
    glue = _json(root / "metrics/glue.json")
    assert list(glue["tasks"]) == ["reviews", *FANNED_OUT]
    for task, result in results.items():
        for model in ("teacher", "student"):
            assert [m for m in result[model] if m != "params"] == TASKS[task]["metrics"], (task, model)
            # a custom task's score in the table is its main metric
            assert glue["tasks"][task][model] == pytest.approx(result[model][TASKS[task]["metrics"][0]])
    assert _json(root / "metrics/teacher.json")["train_examples"] == ROWS["train"]
    assert _json(root / "metrics/glue/similarity/teacher.json")["dev_examples"] == ROWS["dev"]
    report = (root / "report" / "README.md").read_text()
    assert "Your own tasks (reviews, entail, similarity, from custom_tasks)" in report


@pytest.mark.slow
def test_rows_are_read_by_column_name_and_classes_by_name(project):
    root, params = project
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        reviews = load_split(task_of(params), "dev", params["data"])
        pairs = load_split(task_of({**params, "task": "entail"}), "train", params["data"])
        scores = load_split(task_of({**params, "task": "similarity"}), "dev", params["data"])
    sst2, rte, stsb = _glue_rows("sst2", "dev"), _glue_rows("rte", "train"), _glue_rows("stsb", "dev")
    assert reviews["text_a"].tolist() == sst2["text_a"].tolist() and reviews["text_b"].isna().all()
    # labels: [positive, negative]: SST-2's 1 (positive) is class 0 here
    assert reviews["label"].tolist() == (1 - sst2["label"]).tolist()
    assert pairs[["text_a", "text_b", "label"]].equals(rte[["text_a", "text_b", "label"]])
    assert scores["label"].tolist() == pytest.approx(stsb["label"].tolist())


@pytest.mark.slow
def test_exported_models_answer_through_transformers_pipeline_with_the_tasks_labels(project):
    from transformers import pipeline

    root, params = project
    max_length = params["data"]["max_length"]
    with pytest.MonkeyPatch.context() as patch:  # the dev rows in the order the evaluate stages scored them
        patch.chdir(root)
        dev = task_split(params, "dev", "dev_size")
        similar = task_split(task_params(params, "similarity"), "dev", "dev_size")
    classify = pipeline("text-classification", model=str(root / "export/reviews"), device="cpu")
    got = classify(dev["text_a"].tolist(), truncation=True, max_length=max_length)
    scored = pd.read_csv(root / "results/evaluate/predictions.csv")
    assert [["positive", "negative"].index(r["label"]) for r in got] == scored["student"].tolist()
    pair = pipeline("text-classification", model=str(root / "export/entail"), device="cpu")
    assert {r["label"] for r in pair([{"text": "A man sleeps.", "text_pair": "A man is asleep."}])} <= {"yes", "no"}
    similarity = pipeline("text-classification", model=str(root / "export/similarity"), device="cpu")
    got = similarity([{"text": a, "text_pair": b} for a, b in zip(similar["text_a"], similar["text_b"])],
                     truncation=True, max_length=max_length)
    scored = pd.read_csv(root / "results/glue/similarity/predictions.csv")
    assert [r["score"] for r in got] == pytest.approx(scored["student"].tolist(), abs=1e-4)
    card = (root / "export/reviews/README.md").read_text()
    assert "reviews/train.csv and reviews/dev.csv (`data`)" in card and "| accuracy (main) |" in card
    assert "nyu-mll/glue" not in card and "- glue\n" not in card


@pytest.mark.slow
def test_an_edited_data_file_reruns_what_reads_it_under_dvc(project, tmp_path):
    root, _ = project
    copy = tmp_path / "project"
    shutil.copytree(root, copy, symlinks=True)
    run(["git", "init", "-q"], copy)
    run(["dvc", "init", "-q"], copy)
    run(["dvc", "commit", "-f", "-q"], copy)  # records this run's deps and outs, as `dvc repro` would
    assert "up to date" in run(["dvc", "status"], copy).stdout
    with open(copy / "data" / "reviews" / "train.csv", "a") as handle:
        handle.write("999,a late and dull remake,negative\n")
    changed = yaml.safe_load(run(["dvc", "status", "--json"], copy).stdout)
    assert {"teacher", "transfer", "proxy"} <= set(changed)


@pytest.mark.slow
def test_snakemake_plans_every_custom_task_with_its_files_as_inputs(project):
    root, _ = project
    plan = run(["snakemake", "-n", "-p", "--forceall", "--cores", "1", "all"], root).stdout
    for task in FANNED_OUT:
        assert f"stages/glue_teacher.py --params params.yaml --task {task} " in plan
    graph = run(["snakemake", "--filegraph", "--forceall", "--cores", "1", "all"], root).stdout
    teacher = re.search(r'<font point-size="18">teacher</font>(.*?)output', graph, re.S).group(1)
    assert "data/reviews/train.csv" in teacher and "data/reviews/dev.csv" in teacher


# --- bad definitions: one line each, before any work ---------------------------------------------------------

def _checked(params: dict) -> dict:
    return validate_params(json.loads(json.dumps(params)))


def _custom(change) -> dict:
    params = _params()
    change(params["custom_tasks"]["reviews"])
    return params


@pytest.mark.parametrize("change, message", [
    (lambda t: t.update(metrics=["accuracy", "auc"]), "custom_tasks.reviews.metrics.1 = 'auc' is invalid"),
    (lambda t: t.update(metrics=["pearson"]), "custom_tasks.reviews.metrics: 'pearson' is not a metric for a "
                                              "classification task (allowed: accuracy, f1, mcc)"),
    (lambda t: t.update(regression=True), "custom_tasks.reviews: give labels (the classes, as the label column "
                                          "writes them) or regression: true, not both"),
    (lambda t: t.pop("labels"), "custom_tasks.reviews: give labels"),
    (lambda t: t.pop("validation_file"), "custom_tasks.reviews: validation_file missing"),
    (lambda t: t.update(dataset="imdb"), "custom_tasks.reviews: gives both files (train_file, validation_file) "
                                         "and a hub dataset (dataset); give one"),
    (lambda t: t.update(train_file="reviews/train.xlsx"), "custom_tasks.reviews.train_file = 'reviews/train.xlsx': "
                                                          "kdnas reads .csv, .tsv, .jsonl, .json files"),
    (lambda t: t.update(labels=["positive", "positive"]), "custom_tasks.reviews.labels = ['positive', 'positive']: "
                                                          "a class is listed twice"),
    (lambda t: t.update(text_columns=["a", "b", "c"]), "custom_tasks.reviews.text_columns"),
])
def test_bad_definitions_are_one_line(change, message):
    with pytest.raises(ParamsError) as error:
        _checked(_custom(change))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_custom_task_must_not_take_a_glue_name_and_fan_out_names_must_exist():
    params = _params()
    params["custom_tasks"]["sst2"] = params["custom_tasks"].pop("entail")
    params["glue"]["tasks"] = {}
    with pytest.raises(ParamsError, match="custom_tasks"):
        _checked(params)
    params = _params()
    params["glue"]["tasks"]["tickets"] = {}
    with pytest.raises(ParamsError, match=r"glue.tasks.tickets: not a GLUE task .* nor one of custom_tasks "
                                          r"\(reviews, entail, similarity\)"):
        _checked(params)


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_files(tmp_path / "data")
    return tmp_path / "data"


def _searching(params: dict, task: str) -> dict:
    return {**params, "task": task, "glue": {"tasks": {}}}


def _data_error(params: dict, split: str = "train") -> str:
    params = _checked(params)
    with pytest.raises(DataError) as error:
        check_task_files(params)
        load_split(task_of(params), split, params["data"])
    assert "\n" not in str(error.value)
    return str(error.value)


def test_bad_files_are_named_with_their_line(files):
    params = _params()
    assert _data_error(_custom(lambda t: t.update(label_column="stars"))) == (
        "data/reviews/train.csv:1: no column 'stars' (custom_tasks.reviews reads 'review', 'stars'; there: 'id', "
        "'review', 'sentiment')")
    assert _data_error(_custom(lambda t: t.update(train_file="reviews/missing.csv"))) == (
        "custom_tasks.reviews.train_file = 'reviews/missing.csv': file not found (data/reviews/missing.csv)")
    # a label the list does not cover: the line it is on
    assert _data_error(_custom(lambda t: t.update(labels=["positive", "neutral"]))).startswith(
        "data/reviews/train.csv:")
    assert "label 'negative' is not in custom_tasks.reviews.labels ['positive', 'neutral']" in _data_error(
        _custom(lambda t: t.update(labels=["positive", "neutral"])))
    lines = (files / "similarity" / "dev.jsonl").read_text().splitlines()
    lines[6] = lines[6].replace('"score":', '"score":"high","was":')
    (files / "similarity" / "dev.jsonl").write_text("\n".join(lines) + "\n")
    assert _data_error(_searching(params, "similarity"), "dev") == (
        "data/similarity/dev.jsonl:7: score 'high' is not a number (custom_tasks.similarity is a regression task)")
    (files / "entail" / "dev.tsv").write_text("premise\thypothesis\tanswer\n")
    assert _data_error(_searching(params, "entail"), "dev") == "data/entail/dev.tsv: no data rows"
    shutil.rmtree(files)
    assert _data_error(params).startswith("data.custom_dir = 'data': folder not found")


def test_the_stage_cli_refuses_a_bad_file_in_one_line_with_status_2(files):
    params = _custom(lambda t: t.update(labels=["positive", "neutral"]))
    write_params(files.parent / "params.yaml", params)
    result = run(["python", str(REPO / "stages" / "teacher.py"), "--params", "params.yaml", "--model", "teacher",
                  "--metrics", "teacher.json"], files.parent, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "teacher: error: data/reviews/train.csv:2: label 'negative' is not in custom_tasks.reviews.labels "
        "['positive', 'neutral']"]
    assert not (files.parent / "teacher").exists()


def test_a_hub_datasets_class_labels_are_matched_by_name():
    import datasets

    task = task_of({"task": "news", "custom_tasks": {"news": {
        "dataset": "someone/news", "text_columns": ["text"], "label_column": "label",
        "labels": ["sports", "world"], "metrics": ["accuracy"]}}})
    # the hub orders the classes the other way round: its 0 is world
    hub = datasets.Dataset.from_dict({"text": ["goal!", "summit"], "label": [1, 0]}, features=datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["world", "sports"])}))
    frame = custom_frame(task, hub_records(task, hub, "someone/news[train]"), "someone/news[train]")
    assert frame["label"].tolist() == [0, 1]
    with pytest.raises(KdnasError, match=r"someone/news\[train\]: no column 'text'"):
        list(hub_records(task, hub.rename_column("text", "body"), "someone/news[train]"))
