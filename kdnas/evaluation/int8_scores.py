"""The int8 student scored against the fp32 ONNX model it came from: its dev metric, how many predictions it
keeps, and the bound on what it may lose (``export.int8_max_drop``)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kdnas.errors import KdnasError
from kdnas.evaluation.metrics import predictions


@dataclass(frozen=True)
class Int8Result:
    """A quantised model scored against the fp32 ONNX model it came from, on the same dev rows."""

    method: str
    path: Path
    fp32: dict[str, float]
    int8: dict[str, float]
    main_metric: str
    agreement: float  # share of dev rows whose prediction (class, or score within 0.1) is unchanged
    tried: tuple[tuple[str, float], ...] = ()  # each method tried and its main metric (``best`` tries both)

    @property
    def drop_points(self) -> float:
        """How much of the main metric int8 loses, in points (0-100 scale)."""
        return 100.0 * (self.fp32[self.main_metric] - self.int8[self.main_metric])


def check_drop(result: Int8Result, bound: float, task_name: str, rows: int) -> None:
    """The int8 model may lose at most ``bound`` points of the main metric (``export.int8_max_drop``); a metric
    int8 leaves undefined where fp32 has one (constant predictions: no correlation) is a loss too."""
    if math.isnan(result.int8[result.main_metric]) and not math.isnan(result.fp32[result.main_metric]):
        raise KdnasError(f"export: {task_name}: the int8 student ({result.method}) leaves {result.main_metric} "
                         f"undefined on {rows} dev rows (constant predictions; fp32 ONNX: "
                         f"{result.fp32[result.main_metric]:.4f})")
    if result.drop_points > bound:
        metric = result.main_metric
        raise KdnasError(f"export: {task_name}: the int8 student ({result.method}) loses {result.drop_points:.2f} "
                         f"points of {metric} ({result.fp32[metric]:.4f} -> {result.int8[metric]:.4f} on {rows} dev "
                         f"rows), more than export.int8_max_drop = {bound}")


def agreement(task, fp32_logits: np.ndarray, int8_logits: np.ndarray) -> float:
    a, b = predictions(task, fp32_logits), predictions(task, int8_logits)
    same = np.abs(a - b) <= 0.1 if task.is_regression else a == b
    return float(np.mean(same))
