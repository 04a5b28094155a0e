"""GLUE data: one loader over a local GLUE folder or the Hugging Face hub, subsets, tokenisation.

Every split becomes a pandas DataFrame with columns ``text_a``, ``text_b`` (None for
single-sentence tasks) and ``label`` (class index, or float score for STS-B).
"""
from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from kdnas.errors import KdnasError
from kdnas.tasks import GlueTask, get_task

log = logging.getLogger(__name__)


class DataError(KdnasError):
    """Bad or missing data, with a message naming the file (and line)."""


def resolve_glue_dir(glue_dir: str) -> Path | None:
    """The local GLUE folder to read (``data.glue_dir``), or None when it says ``hub`` (nyu-mll/glue).

    A missing folder is an error, never a silent switch to the hub: the hub is used only when asked for.
    """
    if glue_dir == "hub":
        return None
    path = Path(glue_dir)
    if path.is_dir():
        return path
    if path.exists():
        raise DataError(f"data.glue_dir = {glue_dir!r} is a file, not a folder (give a folder in GLUE's layout, "
                        "<TASK>/train.tsv and dev.tsv, or 'hub')")
    raise DataError(f"data.glue_dir = {glue_dir!r}: folder not found (resolved from {Path.cwd()}: {path.resolve()}); "
                    "give a folder in GLUE's layout, or 'hub' to load nyu-mll/glue")


def check_local_split(task: GlueTask, glue_dir: Path, split: str) -> Path:
    """Path of ``<glue_dir>/<TASK>/<split>.tsv``; raises a one-line DataError when missing."""
    folder = glue_dir / task.folder
    if not folder.is_dir():
        raise DataError(f"task folder not found: {folder} (task {task.name!r} expects folder {task.folder!r})")
    path = folder / f"{task.split_file(split)}.tsv"
    if not path.is_file():
        raise DataError(f"split file not found: {path}")
    return path


def check_task_files(params: dict) -> None:
    """Every split file of ``params["task"]`` exists in ``data.glue_dir`` (nothing to check for the hub);
    one-line DataError naming the folder or file otherwise."""
    task = get_task(params["task"])
    local = resolve_glue_dir(params["data"]["glue_dir"])
    if local is not None:
        for split, _ in task.splits:
            check_local_split(task, local, split)


def task_data_files(params: dict, splits: tuple[str, ...] | None = None) -> list[Path]:
    """The local files a stage of ``params["task"]`` reads (every split of the task by default): Snakemake's
    inputs, so an edited file reruns what reads it. Empty for the hub. Missing files are not checked here."""
    task = get_task(params["task"])
    if params["data"]["glue_dir"] == "hub":
        return []
    names = splits or tuple(name for name, _ in task.splits)
    return [Path(params["data"]["glue_dir"]) / task.folder / f"{task.split_file(name)}.tsv" for name in names]


def _parse_label(task: GlueTask, raw: str, path: Path, line_no: int):
    if task.is_regression:
        try:
            score = float(raw)
        except ValueError:
            raise DataError(f"{path}:{line_no}: score {raw!r} is not a number") from None
        low, high = task.score_range
        if not low <= score <= high:  # also refuses nan and inf
            raise DataError(f"{path}:{line_no}: score {raw!r} is outside {task.name}'s range [{low:g}, {high:g}]")
        return score
    try:
        return task.labels.index(raw)
    except ValueError:
        raise DataError(f"{path}:{line_no}: unknown label {raw!r} (allowed: {', '.join(task.labels)})") from None


def _read_text(path: Path) -> str:
    """The file as text; a byte that is not UTF-8 is a one-line DataError naming its line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")  # -sig drops MRPC's byte-order mark
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: byte {raw[error.start:error.start + 1]!r} is not UTF-8 text") from None


def read_glue_tsv(task: GlueTask, path: Path) -> pd.DataFrame:
    """Reads one GLUE TSV file with quoting off, as GLUE's files require.

    Raises:
        DataError: not UTF-8, empty file, a row with the wrong number of columns, an unknown label or a
            score outside the task's range; the message names the file and line.
    """
    rows = []
    # QUOTE_NONE keeps stray quotes as text (QNLI, SST-2).
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None) if task.has_header else None
    expected = task.num_columns or (len(header) if header else None)
    needed = max(max(task.text_columns), task.label_column) + 1
    skipped = []
    for line_no, row in enumerate(reader, start=2 if task.has_header else 1):
        if not row:
            continue
        if (expected and len(row) != expected) or len(row) < needed:
            if task.skip_malformed:
                skipped.append(line_no)
                continue
            raise DataError(f"{path}:{line_no}: expected {expected or needed} tab-separated columns, got {len(row)}")
        texts = [row[i] for i in task.text_columns]
        rows.append((texts[0], texts[1] if len(texts) > 1 else None,
                     _parse_label(task, row[task.label_column], path, line_no)))
    if skipped:
        log.warning("%s: skipped %d malformed row(s) (lines %s)", path, len(skipped),
                    ", ".join(map(str, skipped[:5])) + (", ..." if len(skipped) > 5 else ""))
    if not rows:
        raise DataError(f"{path}: no data rows")
    return pd.DataFrame(rows, columns=["text_a", "text_b", "label"])


def hub_frame(task: GlueTask, dataset) -> pd.DataFrame:
    """A hub split (``datasets.Dataset``) as kdnas rows; class labels mapped by their ClassLabel names.

    Raises:
        DataError: the dataset's label names do not cover the task's, or a row has no label (-1, the
            hub's hidden test labels).
    """
    fields = task.hub_text_fields
    frame = dataset.to_pandas()
    if task.is_regression:
        labels = frame["label"].astype(float)
    else:
        names = list(dataset.features["label"].names)
        missing = [name for name in task.hub_label_names if name not in names]
        if missing:
            raise DataError(f"hub dataset for {task.name!r} names its labels {names}; {missing} expected")
        to_index = {names.index(hub): index for index, hub in enumerate(task.hub_label_names)}
        unknown = sorted(set(frame["label"]) - set(to_index))
        if unknown:
            raise DataError(f"hub dataset for {task.name!r}: label ids {unknown} have no name in {names} "
                            "(-1 marks an unlabelled test split)")
        labels = frame["label"].map(to_index).astype(int)
    return pd.DataFrame({
        "text_a": frame[fields[0]],
        "text_b": frame[fields[1]] if len(fields) > 1 else None,
        "label": labels,
    })


def _load_hub(task: GlueTask, split: str) -> pd.DataFrame:
    import datasets  # imported lazily: heavy, and only needed for the hub

    return hub_frame(task, datasets.load_dataset("nyu-mll/glue", task.name, split=task.hub_split(split)))


def load_split(task_name: str, split: str, glue_dir: str) -> pd.DataFrame:
    """Loads ``split`` (``train``/``dev``) of a GLUE task from a local folder, or the hub for ``hub``."""
    task = get_task(task_name)
    local = resolve_glue_dir(glue_dir)
    if local is None:
        return _load_hub(task, split)
    return read_glue_tsv(task, check_local_split(task, local, split))


def check_size(size: int | None, available: int, key: str, where: str) -> None:
    """A requested subset size (a params key) must fit in the rows there are: never silently fewer."""
    if size is not None and size > available:
        raise DataError(f"params: {key} = {size} exceeds the {available} rows of {where} (null = all of them)")


def stratified_subset(frame: pd.DataFrame, size: int | None, seed: int, regression: bool,
                      keep_index: bool = False) -> pd.DataFrame:
    """A label-stratified random subset of ``size`` rows (all rows when size is None or too big).

    Regression labels are stratified on their quintiles. Row order is shuffled by ``seed``.
    """
    if size is None or size >= len(frame):
        subset = frame.sample(frac=1.0, random_state=seed)
        return subset if keep_index else subset.reset_index(drop=True)
    strata = pd.qcut(frame["label"], 5, labels=False, duplicates="drop") if regression else frame["label"]
    rng = np.random.default_rng(seed)
    parts = []
    for _, group in frame.groupby(strata, sort=True):
        share = len(group) / len(frame)
        parts.append(group.sample(n=max(1, round(share * size)), random_state=int(rng.integers(2**31))))
    subset = pd.concat(parts)
    subset = subset.sample(n=min(size, len(subset)), random_state=seed)
    return subset if keep_index else subset.reset_index(drop=True)


def split_proxy(frame: pd.DataFrame, train_size: int, dev_size: int, seed: int,
                regression: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint label-stratified subsets of a training split: proxy-train and proxy-dev."""
    if train_size + dev_size > len(frame):
        raise DataError(f"proxy needs {train_size}+{dev_size} rows but the training split has {len(frame)}")
    both = stratified_subset(frame, train_size + dev_size, seed, regression)
    dev = stratified_subset(both, dev_size, seed + 1, regression, keep_index=True)
    train = both.drop(index=dev.index)
    return train.reset_index(drop=True), dev.reset_index(drop=True)
