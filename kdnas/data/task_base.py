"""What every task (GLUE's or yours) derives from its labels and metrics, written once for both kinds."""
from __future__ import annotations


class LabelledTask:
    """Mixed into a task dataclass that has ``labels`` (class names; empty for regression) and ``metrics``
    (the first is the main one)."""

    labels: tuple[str, ...]
    metrics: tuple[str, ...]

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.labels)

    @property
    def main_metric(self) -> str:
        return self.metrics[0]
