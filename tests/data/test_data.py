"""The GLUE loader on the real files, on GLUE's documented formats, and on broken input."""
from __future__ import annotations

import pytest
from conftest import GLUE_DIR, tiny_params

from kdnas.data.loading import (
    DataError,
    load_glue_split,
    split_proxy,
    stratified_subset,
)
from kdnas.data.tasks import TASKS, get_task
from kdnas.errors import KdnasError


@pytest.mark.parametrize("task,split,rows", [("sst2", "dev", 872), ("cola", "dev", 1043), ("rte", "dev", 277),
                                             ("stsb", "dev", 1500), ("wnli", "train", 635), ("qnli", "dev", 5463)])
def test_real_glue_files_load_with_official_row_counts(task, split, rows):
    frame = load_glue_split(task, split, str(GLUE_DIR))
    assert len(frame) == rows
    spec = get_task(task)
    if spec.is_regression:
        assert frame["label"].between(0, 5).all()
    else:
        assert set(frame["label"]) == set(range(spec.num_labels))
    assert frame["text_b"].notna().all() == (len(spec.text_columns) == 2)


def test_cola_has_no_header_and_keeps_its_first_row():
    frame = load_glue_split("cola", "train", str(GLUE_DIR))
    assert len(frame) == 8551
    assert (frame["label"] == 1).sum() == 6023


def test_qnli_keeps_stray_quotes(tmp_path):
    # quoting must be off: a leading quote is text, not a CSV quote that swallows tabs
    frame = load_glue_split("qnli", "dev", str(GLUE_DIR))
    assert frame["text_b"].str.startswith('"').sum() >= 1


def _write(tmp_path, folder, name, text, encoding="utf-8"):
    path = tmp_path / folder
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_text(text, encoding=encoding)
    return tmp_path


def test_mrpc_with_bom_header_from_glue_format(tmp_path):
    text = ("\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
            "1\t702876\t702977\tAmrozi accused his brother .\tReferring to him as only \" the witness \" .\n"
            "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought Dominick 's in 1995 .\n")
    _write(tmp_path, "MRPC", "train.tsv", text)
    frame = load_glue_split("mrpc", "train", str(tmp_path))
    assert frame["label"].tolist() == [1, 0]
    assert frame["text_b"][0] == 'Referring to him as only " the witness " .'


def test_qqp_and_mnli_from_glue_format(tmp_path):
    _write(tmp_path, "QQP", "dev.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
           "1\t2\t3\tHow are you?\tHow do you do?\t1\n")
    assert load_glue_split("qqp", "dev", str(tmp_path))["label"].tolist() == [1]
    header = "\t".join(["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                        "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"])
    row = "\t".join(["0", "1", "1n", "gov", "(a)", "(b)", "(A)", "(B)", "A premise .", "A hypothesis .",
                     "neutral", "neutral"])
    _write(tmp_path, "MNLI", "train.tsv", header + "\n" + row + "\n")
    frame = load_glue_split("mnli", "train", str(tmp_path))
    assert frame["label"].tolist() == [get_task("mnli").labels.index("neutral")]
    assert frame["text_a"][0] == "A premise ."


def test_malformed_row_names_file_and_line(tmp_path):
    _write(tmp_path, "SST-2", "train.tsv", "sentence\tlabel\ngood film\t1\nbad\tfilm\t0\n")
    with pytest.raises(DataError, match=r"SST-2/train.tsv:3: expected 2 tab-separated columns, got 3"):
        load_glue_split("sst2", "train", str(tmp_path))


def test_unknown_label_names_file_and_line(tmp_path):
    _write(tmp_path, "RTE", "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n")
    with pytest.raises(DataError, match=r"RTE/dev.tsv:2: unknown label 'maybe'"):
        load_glue_split("rte", "dev", str(tmp_path))


def test_empty_file_missing_folder_and_unknown_task(tmp_path):
    _write(tmp_path, "SST-2", "dev.tsv", "sentence\tlabel\n")
    with pytest.raises(DataError, match="no data rows"):
        load_glue_split("sst2", "dev", str(tmp_path))
    with pytest.raises(DataError, match="task folder not found: .*CoLA"):
        load_glue_split("cola", "dev", str(tmp_path))
    with pytest.raises(DataError, match="split file not found: .*SST-2/train.tsv"):
        load_glue_split("sst2", "train", str(tmp_path))
    with pytest.raises(DataError, match="data.glue_dir = '.*nowhere': folder not found"):
        load_glue_split("sst2", "dev", str(tmp_path / "nowhere"))
    with pytest.raises(KdnasError, match="unknown GLUE task 'sst3'"):
        load_glue_split("sst3", "dev", str(tmp_path))


def test_a_missing_folder_is_an_error_never_the_hub(tmp_path, monkeypatch):
    from kdnas.data.loading import resolve_glue_dir

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # even with a network, a typo never loads the hub
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    assert resolve_glue_dir("hub") is None  # asked for: read from the hub
    with pytest.raises(DataError, match="data.glue_dir = '.*nowhere': folder not found .*or 'hub'"):
        resolve_glue_dir(str(tmp_path / "nowhere"))
    (tmp_path / "file.tsv").write_text("x")
    with pytest.raises(DataError, match="data.glue_dir = '.*file.tsv' is a file, not a folder"):
        resolve_glue_dir(str(tmp_path / "file.tsv"))
    monkeypatch.setenv("KDNAS_GLUE_DIR", str(GLUE_DIR))  # no hidden override: params say where data is
    with pytest.raises(DataError, match="folder not found"):
        resolve_glue_dir(str(tmp_path / "nowhere"))


def test_bad_bytes_and_bad_scores_name_file_and_line(tmp_path):
    _write(tmp_path, "SST-2", "dev.tsv", "sentence\tlabel\nfine\t1\n")
    (tmp_path / "SST-2" / "train.tsv").write_bytes(b"sentence\tlabel\na fine film\t1\nna\xefve\xff\t0\n")
    with pytest.raises(DataError, match=r"SST-2/train.tsv:3: byte b'\\xef' is not UTF-8 text"):
        load_glue_split("sst2", "train", str(tmp_path))
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    for score in ("nan", "7.5", "-1"):
        _write(tmp_path, "STS-B", "dev.tsv", header + f"0\ta\tb\t2012\t0\tx\ty\tA man.\tA man.\t{score}\n")
        with pytest.raises(DataError, match=rf"STS-B/dev.tsv:2: score '{score}' is outside stsb's range \[0, 5\]"):
            load_glue_split("stsb", "dev", str(tmp_path))


def test_sizes_larger_than_the_split_are_refused():
    from kdnas.data.loading import task_split
    from kdnas.pipeline.transfer import transfer_set

    params = tiny_params()
    params["data"]["dev_size"] = 5000
    with pytest.raises(DataError, match="params: data.dev_size = 5000 exceeds the 872 rows of sst2's dev split"):
        task_split(params, "dev", "dev_size")
    params["transfer"]["size"] = 100_000
    with pytest.raises(DataError, match="params: transfer.size = 100000 exceeds the 67349 rows of sst2's train"):
        transfer_set(params)


def test_hub_rows_are_mapped_by_label_name():
    """nyu-mll/glue orders MNLI's classes entailment, neutral, contradiction and names SST-2's; kdnas maps
    each row by its ClassLabel name, so an id never lands on another class."""
    import datasets

    from kdnas.data.loading import hub_frame

    features = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
                                  "idx": datasets.Value("int32")})
    mnli = datasets.Dataset.from_dict({"premise": ["p0", "p1", "p2"], "hypothesis": ["h0", "h1", "h2"],
                                       "label": [0, 1, 2], "idx": [0, 1, 2]}, features=features)
    task = get_task("mnli")
    frame = hub_frame(task, mnli)
    assert [task.labels[i] for i in frame["label"]] == ["entailment", "neutral", "contradiction"]
    sst2 = datasets.Dataset.from_dict(
        {"sentence": ["bad", "good"], "label": [0, 1], "idx": [0, 1]},
        features=datasets.Features({"sentence": datasets.Value("string"), "idx": datasets.Value("int32"),
                                    "label": datasets.ClassLabel(names=["negative", "positive"])}))
    assert hub_frame(get_task("sst2"), sst2)["label"].tolist() == [0, 1]  # GLUE's files: 0 negative, 1 positive
    unlabelled = sst2.cast_column("label", datasets.Value("int64")).map(lambda row: {"label": -1})
    unlabelled = unlabelled.cast_column("label", datasets.ClassLabel(names=["negative", "positive"]))
    with pytest.raises(DataError, match=r"label ids \[-1\] have no name"):
        hub_frame(get_task("sst2"), unlabelled)
    renamed = mnli.cast_column("label", datasets.ClassLabel(names=["yes", "maybe", "no"]))
    with pytest.raises(DataError, match=r"names its labels \['yes', 'maybe', 'no'\]"):
        hub_frame(task, renamed)


def test_task_table_is_complete():
    assert set(TASKS) == {"cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"}
    assert get_task("cola").main_metric == "mcc" and get_task("stsb").is_regression


def test_stratified_subset_keeps_label_shares_and_is_seeded():
    frame = load_glue_split("cola", "train", str(GLUE_DIR))
    subset = stratified_subset(frame, 1000, seed=3, regression=False)
    assert len(subset) == 1000
    assert subset["label"].mean() == pytest.approx(frame["label"].mean(), abs=0.01)
    assert subset.equals(stratified_subset(frame, 1000, seed=3, regression=False))
    assert not subset.equals(stratified_subset(frame, 1000, seed=4, regression=False))


def test_proxy_split_is_disjoint_and_sized():
    frame = load_glue_split("sst2", "train", str(GLUE_DIR)).head(5000)
    frame = frame.assign(row=range(len(frame)))
    train, dev = split_proxy(frame, 300, 100, seed=0, regression=False)
    assert len(train) == 300 and len(dev) == 100
    assert not set(train["row"]) & set(dev["row"])
    with pytest.raises(DataError, match="proxy needs 4000\\+2000 rows but the training split has 5000"):
        split_proxy(frame, 4000, 2000, seed=0, regression=False)
