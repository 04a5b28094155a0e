"""Task data: one loader over a local GLUE folder, the Hugging Face hub, or a custom task's CSV, TSV or JSON
Lines files; subsets.

Every split becomes a pandas DataFrame with columns ``text_a``, ``text_b`` (None for
single-sentence tasks) and ``label`` (class index, or float score for regression tasks).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from kdnas.data.custom_tasks import SPLIT_KEYS, CustomTask, file_format
from kdnas.data.tasks import GlueTask, Task, get_task, task_of
from kdnas.errors import KdnasError

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


def check_task_files(params: dict, splits: tuple[str, ...] | None = None) -> None:
    """Every split file of ``params["task"]`` exists (in ``data.glue_dir``, or a custom task's in ``data.custom_dir``,
    its columns there too); nothing to check for the hub. One-line DataError naming the folder or file otherwise."""
    task = task_of(params)
    names = splits or tuple(name for name, _ in task.splits)
    if not task.is_glue:
        if not task.dataset:
            for split in names:
                check_custom_split(task, params["data"], split)
        return
    local = resolve_glue_dir(params["data"]["glue_dir"])
    if local is not None:
        for split in names:
            check_local_split(task, local, split)


def task_data_files(params: dict, splits: tuple[str, ...] | None = None) -> list[Path]:
    """The local files a stage of ``params["task"]`` reads (every split of the task by default): Snakemake's
    inputs, so an edited file reruns what reads it. Empty for the hub. Missing files are not checked here."""
    task = task_of(params)
    names = splits or tuple(name for name, _ in task.splits)
    if not task.is_glue:
        return [] if task.dataset else [custom_path(task, params["data"], name) for name in names]
    if params["data"]["glue_dir"] == "hub":
        return []
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


def load_split(task: Task, split: str, data: dict) -> pd.DataFrame:
    """Loads ``split`` (``train``/``dev``) of ``task``: a GLUE task from ``data.glue_dir`` (or the hub for
    ``hub``), a custom task from its files in ``data.custom_dir`` or its hub dataset."""
    if not task.is_glue:
        return load_custom_split(task, split, data)
    return load_glue_split(task.name, split, data["glue_dir"])


def load_glue_split(task_name: str, split: str, glue_dir: str) -> pd.DataFrame:
    """Loads ``split`` of the GLUE task ``task_name`` from a local GLUE folder, or the hub for ``hub``."""
    task = get_task(task_name)
    local = resolve_glue_dir(glue_dir)
    if local is None:
        return _load_hub(task, split)
    return read_glue_tsv(task, check_local_split(task, local, split))


def custom_path(task: CustomTask, data: dict, split: str) -> Path:
    return Path(data["custom_dir"]) / task.split_file(split)


def _where(task: CustomTask, split: str) -> str:
    return f"custom_tasks.{task.name}.{SPLIT_KEYS[split][0]}"


def _columns_needed(task: CustomTask) -> list[str]:
    return [*task.text_columns, task.label_column]


def _missing_column(task: CustomTask, columns: Iterable[str], where: str) -> None:
    columns = list(columns)
    for column in _columns_needed(task):
        if column not in columns:
            raise DataError(f"{where}: no column {column!r} (custom_tasks.{task.name} reads "
                            f"{', '.join(map(repr, _columns_needed(task)))}; there: {', '.join(map(repr, columns))})")


def check_custom_split(task: CustomTask, data: dict, split: str) -> Path:
    """The split's file exists, has a format kdnas reads, and its header (first JSON object) has the columns."""
    folder = Path(data["custom_dir"])
    if not folder.is_dir():
        raise DataError(f"data.custom_dir = {data['custom_dir']!r}: folder not found (resolved from {Path.cwd()}); "
                        f"{_where(task, split)} is read from there")
    path = custom_path(task, data, split)
    if not path.is_file():
        raise DataError(f"{_where(task, split)} = {task.split_file(split)!r}: file not found ({path})")
    for line_no, record in _records(path):
        header = 1 if file_format(path) in ("csv", "tsv") else line_no  # JSON Lines: the first object's keys
        _missing_column(task, record, f"{path}:{header}")
        break
    else:
        raise DataError(f"{path}: no data rows")
    return path


def _records(path: Path):
    """(line number, row as a dict) for each row of a CSV, TSV or JSON Lines file, lazily."""
    fmt = file_format(path)
    text = _read_text(path)
    if fmt == "jsonl":
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                raise DataError(f"{path}:{line_no}: not valid JSON ({error.args[0].split(':')[0]})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{line_no}: a JSON Lines row must be an object, got {type(record).__name__}")
            yield line_no, record
        return
    # TSV is quoted like CSV here (pandas' and Python's csv defaults), unlike GLUE's own unquoted TSV files
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
    if not reader.fieldnames:
        return
    for row in reader:
        yield reader.line_num, row


def _custom_label(task: CustomTask, raw, where: str):
    if task.is_regression:
        try:
            score = float(raw)
        except (TypeError, ValueError):
            raise DataError(f"{where}: {task.label_column} {raw!r} is not a number (custom_tasks.{task.name} "
                            "is a regression task)") from None
        if not math.isfinite(score):
            raise DataError(f"{where}: {task.label_column} {raw!r} is not a finite number")
        return score
    name = str(raw).lower() if isinstance(raw, bool) else str(raw)
    try:
        return task.labels.index(name)
    except ValueError:
        raise DataError(f"{where}: label {raw!r} is not in custom_tasks.{task.name}.labels "
                        f"{list(task.labels)}") from None


def custom_frame(task: CustomTask, records: Iterable[tuple[str, dict]], origin: str) -> pd.DataFrame:
    """kdnas rows from (where, row) pairs: the text columns and the label mapped to its class index (or score).

    Raises:
        DataError: a row without one of the columns, a label outside ``labels``, a non-numeric score, or no
            rows at all; the message names the file and line (or hub row).
    """
    rows = []
    for where, record in records:
        values = []
        for column in _columns_needed(task):
            if record.get(column) is None:
                raise DataError(f"{where}: no value in column {column!r}")
            values.append(record[column])
        texts = [str(value) for value in values[:-1]]
        rows.append((texts[0], texts[1] if len(texts) > 1 else None, _custom_label(task, values[-1], where)))
    if not rows:
        raise DataError(f"{origin}: no data rows")
    return pd.DataFrame(rows, columns=["text_a", "text_b", "label"])


def load_custom_split(task: CustomTask, split: str, data: dict) -> pd.DataFrame:
    if task.dataset:
        return _load_custom_hub(task, split)
    path = check_custom_split(task, data, split)
    return custom_frame(task, ((f"{path}:{line_no}", record) for line_no, record in _records(path)), str(path))


def hub_records(task: CustomTask, dataset, origin: str) -> Iterable[tuple[str, dict]]:
    """A hub split's rows, a ClassLabel column's integers given back their names (matched by name, never by id)."""
    _missing_column(task, dataset.column_names, origin)
    names = getattr(dataset.features[task.label_column], "names", None)
    for number, record in enumerate(dataset):
        if names is not None:
            label = record[task.label_column]
            record = {**record, task.label_column: names[label] if 0 <= label < len(names) else label}
        yield f"{origin} row {number}", record


def _load_custom_hub(task: CustomTask, split: str) -> pd.DataFrame:
    import datasets  # imported lazily: heavy, and only needed for the hub

    name = task.hub_split(split)
    dataset = datasets.load_dataset(task.dataset, task.dataset_config, split=name)
    origin = f"{task.dataset}[{name}]"
    return custom_frame(task, hub_records(task, dataset, origin), origin)


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


def check_task_data(params: dict, splits=("train", "dev")) -> None:
    """Fails fast (one line) on a missing data folder, file or (custom task) column."""
    check_task_files(params, tuple(splits))


def full_split(params: dict, split: str):
    """A whole split of the configured task (GLUE folder, hub, or a custom task's files)."""
    return load_split(task_of(params), split, params["data"])


def task_split(params: dict, split: str, size_key: str):
    """The configured subset of a split (``data.train_size`` / ``data.dev_size``), deterministic under seed."""
    task = task_of(params)
    frame = full_split(params, split)
    check_size(params["data"][size_key], len(frame), f"data.{size_key}", f"{task.name}'s {split} split")
    return stratified_subset(frame, params["data"][size_key], params["seed"], task.is_regression)
