"""Evaluating a round of candidates: serially, or in parallel worker processes with identical results.

Each candidate trains with a fixed number of threads (``search.threads_per_candidate``) and its own seed
(``candidate_seed``), so its result does not depend on which process ran it or in what order.
"""
from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from kdnas.arch import Arch
from kdnas.candidates import distill_candidate
from kdnas.threads import torch_threads


def threads_per_candidate(params: dict) -> int:
    search = params["search"]
    return search.get("threads_per_candidate") or max(1, params["latency"]["threads"] // search.get("workers", 1))


def _evaluate(teacher, task, train, dev, params: dict, arch: Arch, importance: dict | None) -> dict:
    begin = time.perf_counter()
    with torch_threads(threads_per_candidate(params)):
        _, result = distill_candidate(teacher, arch, task, train, dev, params["search"], params["space"]["init"],
                                      params["seed"], importance=importance)
    return {**result, "seconds": time.perf_counter() - begin}


class SerialEvaluator:
    """Distils candidates one after another in this process."""

    def __init__(self, params: dict, teacher, task, train, dev, importance: dict | None = None):
        self.params, self.teacher, self.task, self.train, self.dev = params, teacher, task, train, dev
        self.importance = importance

    def __call__(self, archs: list[Arch]) -> list[dict]:
        return [_evaluate(self.teacher, self.task, self.train, self.dev, self.params, arch, self.importance)
                for arch in archs]

    def close(self) -> None:
        pass


_WORKER: dict = {}


def _init_worker(params: dict, teacher_path: str, proxy_dir: str) -> None:
    from kdnas.cache import load_encoded
    from kdnas.importance import inheritance_scores
    from kdnas.losses import attention_implementation
    from kdnas.pipeline.common import load_teacher
    from kdnas.tasks import get_task

    task = get_task(params["task"])
    teacher, tokenizer = load_teacher(teacher_path, attention_implementation(params["search"], task.is_regression))
    max_len = params["data"]["max_length"]
    _WORKER.update(params=params, teacher=teacher, task=task,
                   train=load_encoded(Path(proxy_dir) / "train.parquet", tokenizer, max_len),
                   dev=load_encoded(Path(proxy_dir) / "dev.parquet", tokenizer, max_len),
                   importance=inheritance_scores(params, proxy_dir))


def _evaluate_in_worker(arch_key: str) -> dict:
    w = _WORKER
    return _evaluate(w["teacher"], w["task"], w["train"], w["dev"], w["params"], Arch.from_key(arch_key),
                     w["importance"])


class ParallelEvaluator:
    """Distils the candidates of a round in ``search.workers`` processes, each loading teacher and proxy once."""

    def __init__(self, params: dict, teacher_path: str | Path, proxy_dir: str | Path):
        self.pool = ProcessPoolExecutor(max_workers=params["search"]["workers"], mp_context=get_context("spawn"),
                                        initializer=_init_worker, initargs=(params, str(teacher_path), str(proxy_dir)))

    def __call__(self, archs: list[Arch]) -> list[dict]:
        return list(self.pool.map(_evaluate_in_worker, [a.key for a in archs]))

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)
