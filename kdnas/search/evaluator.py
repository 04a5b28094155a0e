"""Evaluating a round of candidates: serially, or in parallel worker processes with identical results.

Each candidate trains with a fixed number of threads (``search.threads_per_candidate``) and its own seed
(``candidate_seed``), so its result does not depend on which process ran it or in what order. On GPUs each
worker process takes one (:func:`kdnas.device.resolve_compute`); the memory of a finished candidate is
returned before the next one starts.
"""
from __future__ import annotations

import time

from kdnas.device import Compute, resolve_compute
from kdnas.models.arch import Arch
from kdnas.search.proxy_tasks import ProxySet, distill_on_sets, load_proxy_sets
from kdnas.threads import torch_threads
from kdnas.worker_pool import WorkerPool, threads_per_worker


def threads_per_candidate(params: dict) -> int:
    search = params["search"]
    return threads_per_worker(search.get("threads_per_candidate"), params["latency"]["threads"],
                              search.get("workers", 1))


def _evaluate(sets: list[ProxySet], params: dict, arch: Arch, compute: Compute) -> dict:
    begin = time.perf_counter()
    with torch_threads(threads_per_candidate(params)):
        result = distill_on_sets(arch, sets, params["search"], params["space"]["init"], params["seed"], compute)
    return {**result, "seconds": time.perf_counter() - begin}


class SerialEvaluator:
    """Distils candidates one after another in this process, on every search task's proxy set."""

    def __init__(self, params: dict, sets: list[ProxySet], compute: Compute | None = None):
        self.params, self.sets = params, sets
        self.compute = compute or resolve_compute(params)

    def __call__(self, archs: list[Arch]) -> list[dict]:
        return [_evaluate(self.sets, self.params, arch, self.compute) for arch in archs]

    def close(self) -> None:
        pass


_WORKER: dict = {}


def _init_worker(number: int, params: dict, paths: dict) -> None:
    compute = resolve_compute(params, worker_index=number)
    _WORKER.update(params=params, compute=compute, sets=load_proxy_sets(params, "search", compute=compute, **paths))


def _evaluate_in_worker(arch_key: str) -> dict:
    w = _WORKER
    return _evaluate(w["sets"], w["params"], Arch.from_key(arch_key), w["compute"])


class ParallelEvaluator:
    """Distils the candidates of a round in ``search.workers`` processes, each loading teachers and proxies once.

    ``paths``: the ``teacher``, ``proxies`` and ``glue`` folders :func:`kdnas.search.proxy_tasks.load_proxy_sets` reads.
    """

    def __init__(self, params: dict, paths: dict):
        self.pool = WorkerPool(params["search"]["workers"], _init_worker,
                               (params, {k: str(v) for k, v in paths.items()}), log_format="[search worker] %(message)s")

    def __call__(self, archs: list[Arch]) -> list[dict]:
        return self.pool.map(_evaluate_in_worker, [a.key for a in archs])

    def close(self) -> None:
        self.pool.close()
