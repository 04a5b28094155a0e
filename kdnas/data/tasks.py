"""The GLUE task table: one row per task with its folder, columns, labels and metrics; and
:func:`task_of`, the task a run's params name (a GLUE task or one of ``custom_tasks``).

Column positions follow GLUE's own TSV files (``glue_data/<TASK>/{train,dev}.tsv``);
the hub names follow ``datasets.load_dataset("nyu-mll/glue", name)``.
"""
from __future__ import annotations

from dataclasses import dataclass

from kdnas.data.custom_tasks import CustomTask
from kdnas.data.task_base import LabelledTask
from kdnas.errors import KdnasError

# GLUE scores a task by the unweighted mean of these (its "official" metrics); accuracy when not listed.
OFFICIAL = {"cola": ("mcc",), "mrpc": ("f1", "accuracy"), "qqp": ("f1", "accuracy"),
            "stsb": ("pearson", "spearman"), "mnli": ("accuracy", "accuracy_mm")}


@dataclass(frozen=True)
class GlueTask(LabelledTask):
    """How one GLUE task is stored and scored.

    Attributes:
        name: short name used in params (``sst2``).
        folder: GLUE folder name (``SST-2``).
        has_header: whether the TSV files start with a header line (CoLA does not).
        text_columns: column indices of the one or two input texts.
        label_column: column index of the label (negative counts from the end).
        num_columns: expected number of columns per row (None: only the used columns must exist).
        labels: label strings in class-index order; empty for regression.
        metrics: metric names, the first is the task's main metric.
        hub_text_fields: field names in the hub dataset.
        splits: split name -> file stem (MNLI has matched/mismatched dev sets).
        hub_labels: the hub's ClassLabel name of each label, in ``labels`` order (None: the same strings).
            The hub names classes (``negative``/``positive``) where GLUE's files have digits, and orders
            MNLI's differently, so hub rows are mapped by name, never by their integer.
        score_range: the scores a regression task's labels may take (STS-B: 0 to 5).
        skip_malformed: skip (and count) rows with the wrong number of columns instead of refusing the file:
            QQP's train.tsv is known to hold a few such rows (GLUE's own loaders skip them too).
    """

    name: str
    folder: str
    has_header: bool
    text_columns: tuple[int, ...]
    label_column: int
    num_columns: int | None
    labels: tuple[str, ...]
    metrics: tuple[str, ...]
    hub_text_fields: tuple[str, ...]
    splits: tuple[tuple[str, str], ...] = (("train", "train"), ("dev", "dev"))
    hub_labels: tuple[str, ...] | None = None
    score_range: tuple[float, float] = (float("-inf"), float("inf"))
    skip_malformed: bool = False

    @property
    def hub_label_names(self) -> tuple[str, ...]:
        return self.hub_labels or self.labels

    @property
    def official(self) -> tuple[str, ...]:
        """The metrics GLUE averages into the task's score."""
        return OFFICIAL.get(self.name, ("accuracy",))

    @property
    def is_glue(self) -> bool:
        return True

    @property
    def source(self) -> str:
        return f"GLUE {self.folder}"

    def split_file(self, split: str) -> str:
        files = dict(self.splits)
        if split not in files:
            raise KdnasError(f"task {self.name!r} has no split {split!r}; known: {sorted(files)}")
        return files[split]

    def hub_split(self, split: str) -> str:
        stem = self.split_file(split)
        return {"train": "train", "dev": "validation", "dev_matched": "validation_matched",
                "dev_mismatched": "validation_mismatched"}[stem]


_BINARY = ("0", "1")
_ENTAIL2 = ("entailment", "not_entailment")

TASKS: dict[str, GlueTask] = {
    t.name: t
    for t in [
        # CoLA: source, label, original-label mark, sentence; no header.
        GlueTask("cola", "CoLA", False, (3,), 1, 4, _BINARY, ("mcc", "accuracy"), ("sentence",),
                 hub_labels=("unacceptable", "acceptable")),
        GlueTask("sst2", "SST-2", True, (0,), 1, 2, _BINARY, ("accuracy",), ("sentence",),
                 hub_labels=("negative", "positive")),
        # MRPC: Quality, #1 ID, #2 ID, #1 String, #2 String (header starts with a BOM).
        GlueTask("mrpc", "MRPC", True, (3, 4), 0, 5, _BINARY, ("f1", "accuracy"), ("sentence1", "sentence2"),
                 hub_labels=("not_equivalent", "equivalent")),
        # QQP: id, qid1, qid2, question1, question2, is_duplicate.
        GlueTask("qqp", "QQP", True, (3, 4), 5, 6, _BINARY, ("f1", "accuracy"), ("question1", "question2"),
                 hub_labels=("not_duplicate", "duplicate"), skip_malformed=True),
        # STS-B: 10 columns, sentence1/2 at 7/8, score last.
        GlueTask("stsb", "STS-B", True, (7, 8), 9, 10, (), ("pearson", "spearman"), ("sentence1", "sentence2"),
                 score_range=(0.0, 5.0)),
        # MNLI: 12 columns (train) / 16 (dev), sentence1/2 at 8/9, gold label last.
        GlueTask("mnli", "MNLI", True, (8, 9), -1, None, ("contradiction", "entailment", "neutral"),
                 ("accuracy",), ("premise", "hypothesis"),
                 splits=(("train", "train"), ("dev", "dev_matched"), ("dev_mismatched", "dev_mismatched"))),
        GlueTask("qnli", "QNLI", True, (1, 2), 3, 4, _ENTAIL2, ("accuracy",), ("question", "sentence")),
        GlueTask("rte", "RTE", True, (1, 2), 3, 4, _ENTAIL2, ("accuracy",), ("sentence1", "sentence2")),
        GlueTask("wnli", "WNLI", True, (1, 2), 3, 4, _BINARY, ("accuracy",), ("sentence1", "sentence2"),
                 hub_labels=("not_entailment", "entailment")),
    ]
}


def get_task(name: str) -> GlueTask:
    """Returns the task called ``name``; raises a one-line error listing the known tasks."""
    try:
        return TASKS[name]
    except KeyError:
        raise KdnasError(f"unknown GLUE task {name!r}; known tasks: {', '.join(TASKS)}") from None


Task = GlueTask | CustomTask


def task_of(params: dict) -> Task:
    """The task ``params["task"]`` names: one of ``custom_tasks`` (checked first, never a GLUE name) or GLUE's."""
    name = params["task"]
    custom = params.get("custom_tasks") or {}
    if name in custom:
        return CustomTask.from_params(name, custom[name])
    if name not in TASKS:
        raise KdnasError(f"unknown task {name!r}: not a GLUE task ({', '.join(TASKS)}) nor one of custom_tasks "
                         f"({', '.join(custom) or 'none defined'})")
    return TASKS[name]
