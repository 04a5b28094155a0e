"""Careful CPU latency measurement: eval + inference mode, fixed threads, warm-up, median of repeats.

Models are measured interleaved (round-robin) in one process so machine drift cancels in speed-up ratios.
"""
from __future__ import annotations

import copy
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from kdnas.threads import torch_threads


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
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "gpu": gpu, "torch": torch.__version__,
            "platform": platform.platform()}


def dummy_inputs(vocab_size: int, batch_size: int, seq_len: int, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, vocab_size, (batch_size, seq_len), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}


def _time_once(model, inputs, device: str) -> float:
    if device == "cuda":  # kernels run asynchronously: time on the device, then wait for it
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        model(**inputs)
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end)
    start = time.perf_counter()
    model(**inputs)
    return (time.perf_counter() - start) * 1000.0


def check_device(device: str) -> None:
    """Raises a one-line error for a device this machine cannot measure on."""
    from kdnas.errors import KdnasError

    if device not in ("cpu", "cuda"):
        raise KdnasError(f"latency device {device!r} is invalid: use 'cpu' or 'cuda'")
    if device == "cuda" and not torch.cuda.is_available():
        raise KdnasError("latency device 'cuda' requested but no CUDA GPU is available here")


def measure_interleaved(models: dict[str, torch.nn.Module], *, batch_size: int, seq_len: int, threads: int,
                        warmup: int, repeats: int, seed: int = 0, device: str = "cpu") -> dict[str, dict]:
    """Median and interquartile range (ms) of each model's forward pass, measured round-robin.

    On ``cuda`` copies of the models are timed on the GPU with CUDA events after synchronisation (the models
    given stay where they are: the ONNX export that may follow needs them on the CPU).

    Returns:
        name -> {"median_ms", "iqr_ms", "runs", "batch_size", "seq_len", "device"}.
    """
    check_device(device)
    times = {name: [] for name in models}
    with torch_threads(threads):
        with torch.inference_mode():
            prepared = {}
            models = {name: model if device == "cpu" else copy.deepcopy(model).to(device)
                      for name, model in models.items()}
            for name, model in models.items():
                model.eval()
                inputs = dummy_inputs(model.config.vocab_size, batch_size, seq_len, seed)
                prepared[name] = {key: value.to(device) for key, value in inputs.items()}
                for _ in range(warmup):
                    model(**prepared[name])
            for _ in range(repeats):
                for name, model in models.items():
                    times[name].append(_time_once(model, prepared[name], device))
    result = {}
    for name, values in times.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        result[name] = {"median_ms": float(median), "iqr_ms": float(q3 - q1), "runs": len(values),
                        "batch_size": batch_size, "seq_len": seq_len, "device": device}
    return result


def onnx_files(models: dict, backend: str, fusion: str, workdir: Path) -> dict[str, str]:
    """Each model as the ONNX file ``backend`` runs: exported fp32 in the graph form export ships (``fusion``,
    ``export.fusion``), or that file quantised (dynamic int8). Files already in ``workdir`` are reused."""
    from kdnas.deploy.onnx_runtime import export_onnx
    from kdnas.deploy.quantize import quantize

    files = {}
    for name, model in models.items():
        path = workdir / f"{name}.onnx"
        if not path.exists():
            export_onnx(model, path, fusion)
        if backend == "onnxruntime-int8":
            quantized = workdir / f"{name}.int8.onnx"
            path = quantized if quantized.exists() else quantize(path, quantized, "dynamic")
        files[name] = str(path)
    return files


def measure_on_backend(models: dict, backend: str, *, fusion: str, workdir: Path, batch_size: int, seq_len: int,
                       threads: int, warmup: int, repeats: int, device: str = "cpu") -> dict[str, dict]:
    """:func:`measure_interleaved` on ``backend``: eager PyTorch in this process, or ONNX Runtime (fp32 or
    int8) round-robin in a process of its own (``kdnas.latency.ort_timing``), away from torch's thread pool."""
    common = dict(batch_size=batch_size, seq_len=seq_len, threads=threads, warmup=warmup, repeats=repeats)
    if backend == "eager":
        return measure_interleaved(models, device=device, **common)
    from kdnas.latency.ort_timing import measure_in_own_process

    vocab_size = next(iter(models.values())).config.vocab_size
    return measure_in_own_process(paths=onnx_files(models, backend, fusion, workdir), vocab_size=vocab_size, **common)
