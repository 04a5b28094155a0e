"""Your own task (``custom_tasks.<name>`` in params): text classification or regression on your files or a hub
dataset, read by column names in the manner of transformers' ``run_glue.py`` (``train_file``/``validation_file``).

A :class:`CustomTask` answers the questions every stage asks of a GLUE task (labels, metrics, regression or
not, one or two texts), so the pipeline runs on it unchanged; only reading its rows differs (kdnas.data.loading).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kdnas.data.task_base import LabelledTask

# The metrics a task may declare (kdnas.evaluation.metrics computes them); the first one listed is the task's main metric.
CLASSIFICATION_METRICS = ("accuracy", "f1", "mcc")
REGRESSION_METRICS = ("pearson", "spearman")
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
SPLIT_KEYS = {"train": ("train_file", "train_split"), "dev": ("validation_file", "validation_split")}


@dataclass(frozen=True)
class CustomTask(LabelledTask):
    """How one custom task is read and scored.

    Attributes:
        name: its name in params (``custom_tasks.<name>``, and ``task``).
        text_columns: the one or two text columns, by name.
        label_column: the label (or score) column.
        labels: class names as the label column writes them, in class-index order; empty for regression.
        metrics: metric names, the first is the main one.
        files: split (``train``/``dev``) -> file path relative to ``data.custom_dir`` (empty for a hub dataset).
        dataset: a Hugging Face dataset id (None for files), with ``dataset_config`` and ``hub_splits``.
    """

    name: str
    text_columns: tuple[str, ...]
    label_column: str
    labels: tuple[str, ...]
    metrics: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()
    dataset: str | None = None
    dataset_config: str | None = None
    hub_splits: tuple[tuple[str, str], ...] = (("train", "train"), ("dev", "validation"))
    splits: tuple[tuple[str, str], ...] = (("train", "train"), ("dev", "dev"))
    score_range: tuple[float, float] = (float("-inf"), float("inf"))

    @classmethod
    def from_params(cls, name: str, spec: dict) -> "CustomTask":
        """From a checked ``custom_tasks.<name>`` block (kdnas.params checks it first)."""
        files = tuple((split, spec[keys[0]]) for split, keys in SPLIT_KEYS.items() if spec.get(keys[0]))
        hub = tuple((split, spec.get(keys[1], default)) for (split, keys), default
                    in zip(SPLIT_KEYS.items(), ("train", "validation")))
        return cls(name=name, text_columns=tuple(spec["text_columns"]), label_column=spec["label_column"],
                   labels=tuple(str(label) for label in spec.get("labels") or ()), metrics=tuple(spec["metrics"]),
                   files=files, dataset=spec.get("dataset"), dataset_config=spec.get("dataset_config"),
                   hub_splits=hub)

    @property
    def official(self) -> tuple[str, ...]:
        """The metric a task score (and the run's mean over tasks) counts: the main one."""
        return (self.main_metric,)

    @property
    def hub_label_names(self) -> tuple[str, ...]:
        return self.labels

    @property
    def is_glue(self) -> bool:
        return False

    @property
    def source(self) -> str:
        """Where its rows come from, for the model card and messages."""
        if self.dataset:
            return f"hub dataset {self.dataset}" + (f" ({self.dataset_config})" if self.dataset_config else "")
        return " and ".join(path for _, path in self.files)

    def split_file(self, split: str) -> str:
        return dict(self.files)[split]

    def hub_split(self, split: str) -> str:
        return dict(self.hub_splits)[split]


def file_format(path: str | Path) -> str | None:
    """``csv``, ``tsv`` or ``jsonl`` from the file name; None for anything else."""
    return FORMATS.get(Path(path).suffix.lower())
