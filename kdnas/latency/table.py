"""The latency stage's table (``results/latency/latency.csv``), read one way by every stage that uses it.

One row per (backend, model, batch size): ``median_ms``, ``iqr_ms``, ``runs``, ``seq_len``, ``speedup`` (over
the teacher on the same backend), ``speedup_vs_eager`` (over the fp32 teacher in eager PyTorch) and the
hardware (``hw_*`` columns). Models are ``teacher`` and architecture keys.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

EAGER = "eager"


class LatencyTable:
    def __init__(self, frame: pd.DataFrame):
        # tables written before latency.backends existed hold eager PyTorch only
        self.frame = frame if "backend" in frame else frame.assign(backend=EAGER)

    @classmethod
    def read(cls, path: str | Path) -> "LatencyTable":
        return cls(pd.read_csv(path))

    def medians(self, backend: str = EAGER) -> dict[int, dict[str, float]]:
        """batch size -> model -> median ms on ``backend``."""
        rows = self.frame[self.frame["backend"] == backend]
        return {int(size): dict(zip(group["model"], group["median_ms"].astype(float)))
                for size, group in rows.groupby("batch_size")}

    def nearest_batch_size(self, batch_size: int, backend: str = EAGER) -> int:
        """``batch_size`` when it was measured on ``backend``, else the nearest size that was."""
        sizes = sorted(self.medians(backend))
        return batch_size if batch_size in sizes else min(sizes, key=lambda s: abs(s - batch_size))

    def at(self, batch_size: int, backend: str = EAGER) -> pd.DataFrame:
        """The rows of one backend and batch size, indexed by model."""
        rows = self.frame[(self.frame["backend"] == backend) & (self.frame["batch_size"] == batch_size)]
        return rows.set_index("model")

    def speedups(self, model: str) -> dict[str, float]:
        """``model``'s speed-up over the teacher per runtime and batch size: {"bs32": .., "onnxruntime_bs32": ..}
        (eager keys have no prefix), rounded to 3 digits, in the table's order."""
        return {("" if row.backend == EAGER else f"{row.backend}_") + f"bs{row.batch_size}": round(row.speedup, 3)
                for row in self.frame.itertuples() if row.model == model}

    def versus_teacher(self, model: str) -> list[dict]:
        """Per (backend, batch size) where both were timed: the teacher's and ``model``'s medians and speed-ups."""
        rows = []
        for (backend, batch), group in self.frame.groupby(["backend", "batch_size"], sort=True):
            by_model = group.set_index("model")
            if model in by_model.index and "teacher" in by_model.index:
                rows.append({"backend": backend, "batch_size": int(batch), "seq_len": int(by_model.loc[model, "seq_len"]),
                             "teacher_ms": float(by_model.loc["teacher", "median_ms"]),
                             "student_ms": float(by_model.loc[model, "median_ms"]),
                             "speedup": float(by_model.loc[model, "speedup"]),
                             "speedup_vs_eager": float(by_model.loc[model, "speedup_vs_eager"])
                             if "speedup_vs_eager" in by_model else None})
        return rows

    def hardware(self) -> dict:
        """What the times were measured on (CPU, threads, versions), from the ``hw_*`` columns."""
        return {column[3:]: self.frame[column].iloc[0] for column in self.frame.columns if column.startswith("hw_")}
