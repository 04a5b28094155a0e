"""The hand-crafted students of a task (:mod:`kdnas.evaluation.baselines`), distilled from its teacher on its transfer set
with the searched student's recipe, seed and rows; ``baselines.workers`` of them at once, each with a fixed number of
torch threads (:mod:`kdnas.worker_pool`). Finished students are kept in the stage's checkpoint, so a killed run
resumes at the students it was training."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from transformers import AutoConfig

from kdnas.data.logit_tables import load_encoded
from kdnas.data.tasks import task_of
from kdnas.device import resolve_compute
from kdnas.distillation.checkpoint import Checkpoint, stage_checkpoint
from kdnas.distillation.importance import inheritance_scores
from kdnas.distillation.losses import attention_implementation
from kdnas.distillation.recipe import distill_arch
from kdnas.distillation.training import seed_everything
from kdnas.evaluation.baselines import describe, hand_crafted_archs
from kdnas.io import atomic_path, write_json
from kdnas.models.arch import Arch
from kdnas.models.loading import count_parameters, load_model_and_tokenizer, save_model
from kdnas.pipeline.manifest import MANIFEST
from kdnas.threads import torch_threads
from kdnas.worker_pool import WorkerPool, threads_per_worker

log = logging.getLogger(__name__)


def baselines_stage(paths, params: dict) -> str:
    """The search task's hand-crafted students (inheriting by the same importance as its searched student)."""
    return distill_baselines(paths, params, importance=inheritance_scores(params, paths.proxy),
                             tracked=MANIFEST["baselines"].params)


class _Distiller:
    """What distilling a hand-crafted student needs (teacher, transfer rows), loaded once per process."""

    def __init__(self, params: dict, teacher: str, transfer: str, importance: dict | None, worker: int | None = None):
        self.params, self.importance = params, importance
        self.compute = resolve_compute(params, worker_index=worker)
        self.attn = attention_implementation(params["distill_full"], task_of(params).is_regression)
        self.teacher, self.tokenizer = load_model_and_tokenizer(teacher, attn_implementation=self.attn,
                                                                compute=self.compute)
        self.train = load_encoded(transfer, self.tokenizer, params["data"]["max_length"])
        self.threads = student_threads(params)

    def __call__(self, arch: Arch, out: Path, checkpoint: Checkpoint | None) -> dict:
        """Distils ``arch`` into ``out``; returns its summary entry."""
        seed_everything(self.params["seed"])
        with torch_threads(self.threads):
            student, loss, history = distill_arch(arch, self.teacher, self.train, self.params, self.importance,
                                                  checkpoint, self.attn)
        save_model(student, self.tokenizer, out)
        return {**describe(arch, self.teacher.config), "params": count_parameters(student), "loss": str(loss),
                "train_examples": len(self.train), "history": history}


_WORKER: dict = {}


def _init_worker(number: int, *args) -> None:
    _WORKER["distill"] = _Distiller(*args, worker=number)


def _distill_in_worker(job: tuple[str, str, Checkpoint | None]) -> dict:
    key, out, checkpoint = job
    return _WORKER["distill"](Arch.from_key(key), Path(out), checkpoint)


def distill_baselines(paths, params: dict, importance: dict | None, tracked: tuple[str, ...]) -> str:
    task = task_of(params)
    checkpoint = stage_checkpoint(f"baselines/{task.name}", params, [paths.teacher, paths.transfer],
                                  tracked=tracked)
    workers = params["baselines"].get("workers", 1)
    archs = hand_crafted_archs(AutoConfig.from_pretrained(paths.teacher), params["baselines"])
    finished = checkpoint.folder / "finished" if checkpoint else None
    summary = {}
    with atomic_path(paths.models) as tmp:
        Path(tmp).mkdir()
        jobs = []
        for arch in archs:
            entry = checkpoint.done(arch.key) if checkpoint else None
            if entry is not None:  # distilled before the run was stopped
                log.info("%s: distilled before the run stopped, taken from %s", arch.key, finished / arch.key)
                shutil.copytree(finished / arch.key, Path(tmp) / arch.key)
                summary[arch.key] = entry
            else:
                jobs.append((arch.key, str(Path(tmp) / arch.key), checkpoint.sub(arch.key) if checkpoint else None))
        pool = None
        if not jobs:  # every student finished before a stop: nothing loads the teacher
            results = iter(())
        elif workers == 1:
            distiller = _Distiller(params, paths.teacher, paths.transfer, importance)
            results = ((job, distiller(Arch.from_key(job[0]), Path(job[1]), job[2])) for job in jobs)
        else:
            pool = WorkerPool(min(workers, len(jobs)), _init_worker,
                              (params, str(paths.teacher), str(paths.transfer), importance),
                              log_format=f"[baselines {task.name}] %(message)s")
            results = pool.as_completed(_distill_in_worker, jobs)
        try:
            for (key, out, _), entry in results:
                if checkpoint:  # kept at once: a stop while the others train loses nothing of this one
                    shutil.copytree(out, finished / key, dirs_exist_ok=True)
                    checkpoint.mark_done(key, entry)
                summary[key] = entry
        finally:
            if pool:
                pool.close()
    write_json(paths.summary, {"task": task.name, "baselines": {a.key: summary[a.key] for a in archs}})
    if checkpoint:
        checkpoint.clear()
    seconds = sum(entry["history"]["seconds"] for entry in summary.values())
    rows = next(iter(summary.values()))["train_examples"] if summary else 0
    return (f"wrote {paths.models}: {len(archs)} hand-crafted students ({', '.join(a.key for a in archs)}), "
            f"{seconds:.0f}s of training on {rows} rows" + (f", {workers} at a time" if workers > 1 else ""))


def student_threads(params: dict) -> int:
    """Torch threads per hand-crafted student: ``baselines.threads_per_student``, else ``latency.threads``
    shared among ``baselines.workers``."""
    cfg = params["baselines"]
    return threads_per_worker(cfg.get("threads_per_student"), params["latency"]["threads"], cfg.get("workers", 1))
