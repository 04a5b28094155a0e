"""The hand-crafted students of a task (:mod:`kdnas.evaluation.baselines`), distilled from its teacher on its transfer set
with the searched student's recipe, seed and rows. Finished students are kept in the stage's checkpoint, so a
killed run resumes at the student it was training."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from kdnas.data.logit_tables import load_encoded
from kdnas.data.tasks import task_of
from kdnas.device import resolve_compute
from kdnas.distillation.checkpoint import stage_checkpoint
from kdnas.distillation.importance import inheritance_scores
from kdnas.distillation.losses import attention_implementation
from kdnas.distillation.recipe import distill_arch
from kdnas.distillation.training import seed_everything
from kdnas.evaluation.baselines import describe, hand_crafted_archs
from kdnas.io import atomic_path, write_json
from kdnas.models.loading import count_parameters, load_model_and_tokenizer, save_model
from kdnas.pipeline.manifest import MANIFEST

log = logging.getLogger(__name__)


def baselines_stage(paths, params: dict) -> str:
    """The search task's hand-crafted students (inheriting by the same importance as its searched student)."""
    return distill_baselines(paths, params, importance=inheritance_scores(params, paths.proxy),
                             tracked=MANIFEST["baselines"].params)


def distill_baselines(paths, params: dict, importance: dict | None, tracked: tuple[str, ...]) -> str:
    task = task_of(params)
    checkpoint = stage_checkpoint(f"baselines/{task.name}", params, [paths.teacher, paths.transfer],
                                  tracked=tracked)
    compute = resolve_compute(params)
    seed_everything(params["seed"])
    attn = attention_implementation(params["distill_full"], task.is_regression)
    teacher, tokenizer = load_model_and_tokenizer(paths.teacher, attn_implementation=attn, compute=compute)
    archs = hand_crafted_archs(teacher.config, params["baselines"])
    train = load_encoded(paths.transfer, tokenizer, params["data"]["max_length"])
    finished = checkpoint.folder / "finished" if checkpoint else None
    summary, seconds = {}, 0.0
    with atomic_path(paths.models) as tmp:
        Path(tmp).mkdir()
        for arch in archs:
            out = Path(tmp) / arch.key
            entry = checkpoint.done(arch.key) if checkpoint else None
            if entry is not None:  # distilled before the run was stopped
                log.info("%s: distilled before the run stopped, taken from %s", arch.key, finished / arch.key)
                shutil.copytree(finished / arch.key, out)
            else:
                student, loss, history = distill_arch(arch, teacher, train, params, importance,
                                                      checkpoint.sub(arch.key) if checkpoint else None, attn)
                save_model(student, tokenizer, out)
                entry = {**describe(arch, teacher.config), "params": count_parameters(student), "loss": str(loss),
                         "train_examples": len(train), "history": history}
                if checkpoint:
                    shutil.copytree(out, finished / arch.key, dirs_exist_ok=True)
                    checkpoint.mark_done(arch.key, entry)
            summary[arch.key] = entry
            seconds += entry["history"]["seconds"]
    write_json(paths.summary, {"task": task.name, "baselines": summary})
    if checkpoint:
        checkpoint.clear()
    return (f"wrote {paths.models}: {len(archs)} hand-crafted students ({', '.join(a.key for a in archs)}), "
            f"{seconds:.0f}s of training on {len(train)} rows")
