"""GLUE data: one loader over a local GLUE folder or the Hugging Face hub, subsets, tokenisation.

Every split becomes a pandas DataFrame with columns ``text_a``, ``text_b`` (None for
single-sentence tasks) and ``label`` (class index, or float score for STS-B).
"""
from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from kdnas.errors import KdnasError
from kdnas.tasks import GlueTask, get_task

log = logging.getLogger(__name__)


class DataError(KdnasError):
    """Bad or missing data, with a message naming the file (and line)."""


def _hub_offline() -> bool:
    return any(os.environ.get(name, "").lower() in ("1", "true", "yes") for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def resolve_glue_dir(glue_dir: str | None, hub_fallback: bool = False) -> Path | None:
    """The local GLUE folder to read, or None to use the Hugging Face hub.

    ``glue_dir`` is a path or ``hub``; the environment variable ``KDNAS_GLUE_DIR`` overrides it so one
    checkout can point at any GLUE copy. A missing folder falls back to the hub when ``hub_fallback`` is
    on and the hub is not switched off (``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE``); otherwise it is a
    one-line DataError.
    """
    glue_dir = os.environ.get("KDNAS_GLUE_DIR") or glue_dir
    if not glue_dir or glue_dir == "hub":
        return None
    path = Path(glue_dir)
    if path.is_dir():
        return path
    if hub_fallback and not _hub_offline():
        log.info("GLUE folder %s not found: loading nyu-mll/glue from the hub", path)
        return None
    offline = " and the hub is switched off (HF_HUB_OFFLINE)" if hub_fallback else ""
    raise DataError(f"GLUE folder not found: {path}{offline} (set data.glue_dir to a folder in GLUE's layout, "
                    f"or 'hub')")


def check_local_split(task: GlueTask, glue_dir: Path, split: str) -> Path:
    """Path of ``<glue_dir>/<TASK>/<split>.tsv``; raises a one-line DataError when missing."""
    folder = glue_dir / task.folder
    if not folder.is_dir():
        raise DataError(f"task folder not found: {folder} (task {task.name!r} expects folder {task.folder!r})")
    path = folder / f"{task.split_file(split)}.tsv"
    if not path.is_file():
        raise DataError(f"split file not found: {path}")
    return path


def _parse_label(task: GlueTask, raw: str, path: Path, line_no: int):
    if task.is_regression:
        try:
            return float(raw)
        except ValueError:
            raise DataError(f"{path}:{line_no}: score {raw!r} is not a number") from None
    try:
        return task.labels.index(raw)
    except ValueError:
        raise DataError(f"{path}:{line_no}: unknown label {raw!r} (allowed: {', '.join(task.labels)})") from None


def read_glue_tsv(task: GlueTask, path: Path) -> pd.DataFrame:
    """Reads one GLUE TSV file with quoting off, as GLUE's files require.

    Raises:
        DataError: empty file, a row with the wrong number of columns, or an unknown label;
            the message names the file and line.
    """
    rows = []
    # utf-8-sig drops MRPC's byte-order mark; QUOTE_NONE keeps stray quotes as text (QNLI, SST-2).
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None) if task.has_header else None
        expected = task.num_columns or (len(header) if header else None)
        needed = max(max(task.text_columns), task.label_column) + 1
        for line_no, row in enumerate(reader, start=2 if task.has_header else 1):
            if not row:
                continue
            if (expected and len(row) != expected) or len(row) < needed:
                raise DataError(f"{path}:{line_no}: expected {expected or needed} tab-separated columns, got {len(row)}")
            texts = [row[i] for i in task.text_columns]
            rows.append((texts[0], texts[1] if len(texts) > 1 else None,
                         _parse_label(task, row[task.label_column], path, line_no)))
    if not rows:
        raise DataError(f"{path}: no data rows")
    return pd.DataFrame(rows, columns=["text_a", "text_b", "label"])


def _load_hub(task: GlueTask, split: str) -> pd.DataFrame:
    import datasets  # imported lazily: heavy, and only needed off-line-less

    ds = datasets.load_dataset("nyu-mll/glue", task.name, split=task.hub_split(split))
    frame = ds.to_pandas()
    fields = task.hub_text_fields
    return pd.DataFrame({
        "text_a": frame[fields[0]],
        "text_b": frame[fields[1]] if len(fields) > 1 else None,
        "label": frame["label"].astype(float if task.is_regression else int),
    })


def load_split(task_name: str, split: str, glue_dir: str | None, hub_fallback: bool = False) -> pd.DataFrame:
    """Loads ``split`` (``train``/``dev``) of a GLUE task from a local folder, else the hub."""
    task = get_task(task_name)
    local = resolve_glue_dir(glue_dir, hub_fallback)
    if local is None:
        return _load_hub(task, split)
    return read_glue_tsv(task, check_local_split(task, local, split))


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
