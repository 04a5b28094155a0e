"""Training checkpoints: a killed or stopped stage resumes where it was and ends as an uninterrupted run would.

A stage's checkpoint lives in ``<checkpoint.dir>/<stage>/<key>/``, outside its declared outputs (DVC and
Snakemake delete those before rerunning a stage). The key hashes the params the stage declares in the manifest
(the ones DVC and Snakemake track; never the ``checkpoint`` block, which does not change results) and the
contents of its input files, so a checkpoint of other params or inputs is never resumed, and one survives a
change to a param the stage does not read. Nothing is deleted when a stage starts (its inputs may yet prove bad, and
an interrupted run of other params may be wanted back): the stage deletes its checkpoint, and any left under
other keys, only once its outputs are written.

Files are ours: tensors via ``torch.save`` read back with ``torch.load(weights_only=True)``, finished
candidates' results as JSON.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from kdnas.device import CPU, Compute, resolve_compute
from kdnas.errors import KdnasError, StopRequested  # noqa: F401 (re-exported)
from kdnas.io import atomic_path, read_json, write_json
from kdnas.params_keys import value_at

COMPUTE_FILE = "compute.json"  # beside train.pt: the device type and precision it was trained in
log = logging.getLogger(__name__)


def _hash_path(digest, path: Path) -> None:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)


def stage_key(stage: str, params: dict, inputs: Iterable[str | Path] = (), tracked: Iterable[str] | None = None) -> str:
    """Hash of the stage name, its params and its input files' contents.

    ``tracked``: the dotted params keys the stage declares (:mod:`kdnas.pipeline.manifest`), so a change to any
    other param keeps its checkpoint; None hashes every param but ``checkpoint``."""
    digest = hashlib.sha256(stage.encode())
    chosen = ({k: v for k, v in params.items() if k != "checkpoint"} if tracked is None
              else {key: value_at(params, key) for key in tracked})
    digest.update(json.dumps(chosen, sort_keys=True).encode())
    for path in inputs:
        _hash_path(digest, Path(path))
    return digest.hexdigest()[:16]


class Checkpoint:
    """One folder of resumable state: a training state (``train.pt``) and finished parts (``done/*.json``)."""

    def __init__(self, folder: Path, every_steps: int, stage_root: Path | None = None, compute: Compute = CPU):
        self.folder, self.every_steps = Path(folder), every_steps
        self.stage_root = stage_root  # the folder of every key of this stage: stale keys go with clear()
        self.compute = compute  # the device type and precision this run trains in; a checkpoint must match

    def sub(self, name: str) -> "Checkpoint":
        """A checkpoint for one part of the stage (e.g. one candidate of distill_topk)."""
        return Checkpoint(self.folder / name, self.every_steps, compute=self.compute)

    def _record_compute(self) -> None:
        write_json(self.folder / COMPUTE_FILE, {"kind": self.compute.kind})

    @property
    def _train_path(self) -> Path:
        return self.folder / "train.pt"

    def save_training(self, state: dict) -> None:
        """Saves a training state, recording the device type and precision it was trained in."""
        self._record_compute()
        with atomic_path(self._train_path) as tmp:
            torch.save({**state, "compute": self.compute.kind}, tmp)

    def load_training(self) -> dict | None:
        """The saved training state (tensors on the CPU; loading a state dict moves them to the model's device),
        or None. Raises when it was trained on another device type or in another precision: its RNG streams
        and numerics would silently mix with this run's."""
        if not self._train_path.exists():
            return None
        state = torch.load(self._train_path, weights_only=True, map_location="cpu")
        _check_kind(self._train_path, state.get("compute", CPU.kind), self.compute)
        return state

    def check_compute(self) -> None:
        """Refuses, before any heavy work, a folder holding training states or finished parts of another
        device type or precision."""
        for record in sorted(self.folder.rglob(COMPUTE_FILE)) if self.folder.is_dir() else []:
            _check_kind(record.parent, read_json(record)["kind"], self.compute)

    def done(self, name: str) -> dict | None:
        """The saved result of a finished part, or None."""
        path = self.folder / "done" / f"{name}.json"
        return read_json(path) if path.exists() else None

    def mark_done(self, name: str, result: dict) -> None:
        self._record_compute()
        write_json(self.folder / "done" / f"{name}.json", result)
        shutil.rmtree(self.folder / name, ignore_errors=True)  # its training state is no longer needed

    def clear(self) -> None:
        """Deletes this checkpoint, and the stage's checkpoints under other keys: called once outputs are written."""
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.stage_root is not None and self.stage_root.is_dir():
            for stale in self.stage_root.iterdir():
                log.info("removing checkpoint %s: made under other params or inputs", stale)
                shutil.rmtree(stale, ignore_errors=True)
        # <dir>/<stage>/<task>, <dir>/<stage>, then <dir>, each when empty
        for parent in list(self.folder.parents)[:3]:
            try:
                parent.rmdir()
            except OSError:
                break


def _check_kind(where: Path, saved: str, compute: Compute) -> None:
    if saved != compute.kind:
        raise KdnasError(f"checkpoint {where} was trained on {saved}, this run trains on {compute.kind}: set "
                         f"compute.device and compute.precision to match it to resume, or delete {where} to start over")


def stage_checkpoint(stage: str, params: dict, inputs: Iterable[str | Path] = (),
                     tracked: Iterable[str] | None = None) -> Checkpoint | None:
    """The stage's checkpoint under params' ``checkpoint`` block (None when absent or ``every_steps`` is 0).

    Checkpoints of this stage under other keys (other params or inputs) can never resume here; they are kept
    until this one's :meth:`Checkpoint.clear`, so a run that fails on bad input deletes nothing. One trained on
    another device type or precision (``compute: auto`` resolves by machine) is refused here, before the stage
    loads anything.
    """
    cfg = params.get("checkpoint") or {}
    if not cfg.get("every_steps"):
        return None
    root = Path(cfg.get("dir", "checkpoints")) / stage
    checkpoint = Checkpoint(root / stage_key(stage, params, inputs, tracked), cfg["every_steps"], stage_root=root,
                            compute=resolve_compute(params))
    checkpoint.check_compute()
    return checkpoint


def rng_state(device: torch.device | None = None) -> dict:
    """torch (and, training on a GPU, its CUDA generator's), numpy and python RNG states as tensors, lists and
    numbers (loadable with weights_only)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)},
             "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next}}
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)  # dropout masks on a GPU come from this one
    return state


def set_rng_state(state: dict, device: torch.device | None = None) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


class _Sigterm:
    requested = False


@contextmanager
def handling_sigterm(handler) -> Iterator[None]:
    """While active, SIGTERM calls ``handler(signum, frame)`` instead of ending the process; the previous handler
    comes back afterwards. Outside the main thread signals are left alone (Python allows no handler there)."""
    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def sigterm_at_step_boundary() -> Iterator[type[_Sigterm]]:
    """While active, SIGTERM only sets a flag; the training loop saves and stops at the next step boundary."""
    _Sigterm.requested = False

    def handler(signum, frame):
        _Sigterm.requested = True

    with handling_sigterm(handler):
        yield _Sigterm
