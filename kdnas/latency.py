"""Careful CPU latency measurement: eval + inference mode, fixed threads, warm-up, median of repeats.

Models are measured interleaved (round-robin) in one process so machine drift cancels in speed-up ratios.
"""
from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch


def hardware_identity(threads: int) -> dict:
    """What the numbers were measured on; results from different machines must never mix silently."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "torch": torch.__version__,
            "platform": platform.platform()}


def dummy_inputs(vocab_size: int, batch_size: int, seq_len: int, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, vocab_size, (batch_size, seq_len), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}


def _time_once(model, inputs) -> float:
    start = time.perf_counter()
    model(**inputs)
    return (time.perf_counter() - start) * 1000.0


def measure_interleaved(models: dict[str, torch.nn.Module], *, batch_size: int, seq_len: int, threads: int,
                        warmup: int, repeats: int, seed: int = 0) -> dict[str, dict]:
    """Median and interquartile range (ms) of each model's forward pass, measured round-robin.

    Returns:
        name -> {"median_ms", "iqr_ms", "runs", "batch_size", "seq_len"}.
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        times = {name: [] for name in models}
        with torch.inference_mode():
            prepared = {}
            for name, model in models.items():
                model.eval()
                prepared[name] = dummy_inputs(model.config.vocab_size, batch_size, seq_len, seed)
                for _ in range(warmup):
                    model(**prepared[name])
            for _ in range(repeats):
                for name, model in models.items():
                    times[name].append(_time_once(model, prepared[name]))
    finally:
        torch.set_num_threads(previous_threads)
    result = {}
    for name, values in times.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        result[name] = {"median_ms": float(median), "iqr_ms": float(q3 - q1), "runs": len(values),
                        "batch_size": batch_size, "seq_len": seq_len}
    return result
