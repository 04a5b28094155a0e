"""Evaluating a round of candidates: serially, or in parallel worker processes with identical results.

Each candidate trains with a fixed number of threads (``search.threads_per_candidate``) and its own seed
(``candidate_seed``), so its result does not depend on which process ran it or in what order. On GPUs each
worker process takes one (:func:`kdnas.device.resolve_compute`); the memory of a finished candidate is
returned before the next one starts.
"""
from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from kdnas.arch import Arch
from kdnas.candidates import distill_candidate
from kdnas.device import Compute, resolve_compute
from kdnas.threads import torch_threads


def threads_per_candidate(params: dict) -> int:
    search = params["search"]
    return search.get("threads_per_candidate") or max(1, params["latency"]["threads"] // search.get("workers", 1))


def _evaluate(teacher, task, train, dev, params: dict, arch: Arch, importance: dict | None, compute: Compute) -> dict:
    begin = time.perf_counter()
    with torch_threads(threads_per_candidate(params)):
        _, result = distill_candidate(teacher, arch, task, train, dev, params["search"], params["space"]["init"],
                                      params["seed"], importance=importance, compute=compute)
    compute.release()  # the student, its optimizer and activations: gone before the next candidate
    return {**result, "seconds": time.perf_counter() - begin}


class SerialEvaluator:
    """Distils candidates one after another in this process."""

    def __init__(self, params: dict, teacher, task, train, dev, importance: dict | None = None,
                 compute: Compute | None = None):
        self.params, self.teacher, self.task, self.train, self.dev = params, teacher, task, train, dev
        self.importance = importance
        self.compute = compute or resolve_compute(params)

    def __call__(self, archs: list[Arch]) -> list[dict]:
        return [_evaluate(self.teacher, self.task, self.train, self.dev, self.params, arch, self.importance,
                          self.compute) for arch in archs]

    def close(self) -> None:
        pass


_WORKER: dict = {}


def _init_worker(params: dict, teacher_path: str, proxy_dir: str, worker_numbers) -> None:
    from kdnas.cache import load_encoded
    from kdnas.importance import inheritance_scores
    from kdnas.losses import attention_implementation
    from kdnas.pipeline.common import load_teacher
    from kdnas.tasks import task_of

    task = task_of(params)
    compute = resolve_compute(params, worker_index=worker_numbers.get())
    teacher, tokenizer = load_teacher(teacher_path, attention_implementation(params["search"], task.is_regression),
                                      compute)
    max_len = params["data"]["max_length"]
    _WORKER.update(params=params, teacher=teacher, task=task, compute=compute,
                   train=load_encoded(Path(proxy_dir) / "train.parquet", tokenizer, max_len),
                   dev=load_encoded(Path(proxy_dir) / "dev.parquet", tokenizer, max_len),
                   importance=inheritance_scores(params, proxy_dir))


def _evaluate_in_worker(arch_key: str) -> dict:
    w = _WORKER
    return _evaluate(w["teacher"], w["task"], w["train"], w["dev"], w["params"], Arch.from_key(arch_key),
                     w["importance"], w["compute"])


class ParallelEvaluator:
    """Distils the candidates of a round in ``search.workers`` processes, each loading teacher and proxy once."""

    def __init__(self, params: dict, teacher_path: str | Path, proxy_dir: str | Path):
        workers = params["search"]["workers"]
        context = get_context("spawn")
        worker_numbers = context.Queue()  # each worker takes a number, and with it its GPU
        for number in range(workers):
            worker_numbers.put(number)
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                                        initargs=(params, str(teacher_path), str(proxy_dir), worker_numbers))

    def __call__(self, archs: list[Arch]) -> list[dict]:
        return list(self.pool.map(_evaluate_in_worker, [a.key for a in archs]))

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)
