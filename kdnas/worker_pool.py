"""Processes that train independent models side by side: search candidates, hand-crafted students.

On a few CPU cores, two trainings of one thread each get through more steps than one training of two threads:
on 2 cores, a distillation step of the default student took 134.5 ms with one thread beside another such
training, 82.4 ms with both threads alone, so two at once make 1.22x the steps per second
(``bench/side_by_side.py``, ``bench/out/side_by_side_summary.csv``). Each task trains with a fixed number of torch threads
(:func:`threads_per_worker`), never "whatever the process has", so its result depends on that number only,
not on which worker ran it nor on how many ran at once: one worker with the same threads gives the same tensors.

On GPUs each worker takes one of the visible devices, round-robin (:func:`kdnas.device.resolve_compute`).

Stopping: SIGTERM to the stage is passed on to its workers, whose training saves a checkpoint at the next step
boundary and raises :class:`~kdnas.errors.StopRequested`, which reaches the stage through the task's result.
A worker also gets SIGTERM when the stage dies (Linux ``PR_SET_PDEATHSIG``: a SIGKILLed stage leaves no
orphan training and writing its checkpoint while a rerun resumes from it).
"""
from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from kdnas.distillation.checkpoint import handling_sigterm
from kdnas.errors import StopRequested

_PR_SET_PDEATHSIG = 1


def threads_per_worker(fixed: int | None, threads: int, workers: int) -> int:
    """Torch threads for each task: ``fixed`` when set, else the machine's ``threads`` shared among the workers."""
    return fixed or max(1, threads // workers)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_STOP = {"requested": False}  # in a worker: SIGTERM arrived


def _note_sigterm(signum, frame) -> None:
    _STOP["requested"] = True


def _start_worker(numbers, log_format: str, initializer: Callable, initargs: tuple) -> None:
    # SIGTERM never kills a worker outright: one killed while idle can hold the task queue's lock and hang the
    # pool. Training turns it into a checkpoint and a stop (its own handler); otherwise no task starts after it.
    signal.signal(signal.SIGTERM, _note_sigterm)
    _die_with_parent()
    logging.basicConfig(level=logging.INFO, format=log_format, stream=sys.stderr)
    initializer(numbers.get(), *initargs)


def _unless_stopped(function: Callable, item):
    if _STOP["requested"]:
        raise StopRequested("stopped by SIGTERM before this part started; rerun the stage to resume")
    return function(item)


@contextmanager
def _sigterm_passed_to_workers() -> Iterator[dict]:
    """While active, SIGTERM is sent on to this process's children (the pool's workers) instead of ending it."""
    state = {"requested": False}

    def forward(signum, frame):
        state["requested"] = True
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGTERM)

    with handling_sigterm(forward):
        yield state


class WorkerPool:
    """``workers`` spawned processes, each running ``initializer(number, *initargs)`` once (numbers 0, 1, ...:
    a worker's GPU), then tasks; each task sets its own torch threads (:func:`threads_per_worker`)."""

    def __init__(self, workers: int, initializer: Callable, initargs: tuple = (),
                 log_format: str = "[worker] %(message)s"):
        context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools and CUDA state
        numbers = context.Queue()
        for number in range(workers):
            numbers.put(number)
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                                        initargs=(numbers, log_format, initializer, initargs))

    def as_completed(self, function: Callable, items: Iterable) -> Iterator[tuple[Any, Any]]:
        """``(item, function(item))`` for each item, in the order they finish. A SIGTERM meanwhile stops the
        workers at their next training step boundary; the first :class:`StopRequested` is raised once every
        worker has stopped (so each saved its checkpoint)."""
        with _sigterm_passed_to_workers() as sigterm:
            pending = {self.pool.submit(_unless_stopped, function, item): item for item in items}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        item = pending.pop(future)
                        yield item, future.result()
            except (StopRequested, BrokenProcessPool) as error:
                self.close()
                if isinstance(error, StopRequested):
                    raise
                if sigterm["requested"]:  # a worker ended by SIGTERM between trainings
                    raise StopRequested("stopped by SIGTERM; finished parts kept in the checkpoint, rerun the "
                                        "stage to resume") from None
                raise

    def map(self, function: Callable, items: Iterable) -> list:
        """``function(item)`` for each item, in the items' order (see :meth:`as_completed`)."""
        items = list(items)
        results = dict(self.as_completed(_Indexed(function, items), range(len(items))))
        return [results[index] for index in range(len(items))]

    def close(self) -> None:
        """Cancels the tasks not started and waits for the workers to end."""
        self.pool.shutdown(wait=True, cancel_futures=True)


class _Indexed:
    """``function(items[index])``: lets :meth:`WorkerPool.map` keep the order through :meth:`as_completed`."""

    def __init__(self, function: Callable, items: list):
        self.function, self.items = function, items

    def __call__(self, index: int):
        return self.function(self.items[index])
