"""ONNX Runtime latency in a process of its own: ``python -m kdnas.latency.ort_timing`` reads a request (JSON on
stdin) and prints each model's timing (JSON on stdout).

The latency stage runs PyTorch in its own process; ONNX Runtime timed there would share the cores with torch's
thread pool. This module imports numpy and onnxruntime only (and kdnas's torch-free session module), and times
the models of one runtime round-robin, as ``kdnas.latency.measure.measure_interleaved`` does for eager, with
sessions whose threads do not spin between runs (see :func:`kdnas.deploy.ort_session.session`: spinning, not the
shared process, is what made an earlier run measure the fp32 teacher at 66 ms at batch 1 through ONNX Runtime
against 27 ms in torch eager).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from kdnas.deploy.ort_session import session


def measure(paths: dict[str, str], vocab_size: int, batch_size: int, seq_len: int, threads: int, warmup: int,
            repeats: int, seed: int = 0) -> dict[str, dict]:
    """Median and interquartile range (ms) of each ONNX file's run, round-robin, on random token ids."""
    ids = np.random.default_rng(seed).integers(1000, vocab_size, (batch_size, seq_len), dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    sessions = {name: session(path, threads) for name, path in paths.items()}
    for run in sessions.values():
        for _ in range(warmup):
            run.run(None, feed)
    times = {name: [] for name in sessions}
    for _ in range(repeats):
        for name, run in sessions.items():
            start = time.perf_counter()
            run.run(None, feed)
            times[name].append((time.perf_counter() - start) * 1000.0)
    result = {}
    for name, values in times.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        result[name] = {"median_ms": float(median), "iqr_ms": float(q3 - q1), "runs": len(values),
                        "batch_size": batch_size, "seq_len": seq_len, "device": "cpu"}
    return result


def measure_in_own_process(**request) -> dict[str, dict]:
    """:func:`measure` in a fresh interpreter (this module only); its error, if any, in one line."""
    done = subprocess.run([sys.executable, "-m", "kdnas.latency.ort_timing"], input=json.dumps(request), text=True,
                          capture_output=True)
    if done.returncode != 0:
        from kdnas.errors import KdnasError

        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise KdnasError(f"ONNX Runtime timing process failed ({done.returncode}): {last}")
    return json.loads(done.stdout)


if __name__ == "__main__":
    print(json.dumps(measure(**json.loads(sys.stdin.read()))))
