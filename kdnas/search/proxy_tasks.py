"""The tasks a candidate is scored on during the search and distill_topk, and how their scores combine.

``search.tasks: all`` (the default) scores every candidate on the search task and on every task of
``glue.tasks``: the candidate is built from each task's own teacher, distilled on that task's proxy-train
(its teacher's logits cached by the ``proxy`` / ``glue_proxy`` stages) and scored on its proxy-dev. The
search's score is the mean over tasks of the candidate's proxy score relative to that task's teacher on
the same rows, so a shape that costs one task most of its score (a narrow hidden size on STS-B) is not
chosen on the strength of another (SST-2, where it costs nothing). ``search.tasks: search`` scores the
search task alone, as before (its score is then the raw main metric, not a ratio).

Every task's proxy folder is ``<proxies>/<task>/``; the search task's teacher is ``results/teacher/model``,
a fanned-out task's ``<glue>/<task>/teacher/model``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kdnas.data.batching import Encoded
from kdnas.data.logit_tables import (
    TEACHER_FINGERPRINT,
    load_encoded,
    teacher_fingerprint,
)
from kdnas.data.tasks import Task, task_of
from kdnas.device import Compute
from kdnas.distillation.importance import inheritance_scores
from kdnas.distillation.losses import attention_implementation
from kdnas.errors import KdnasError
from kdnas.evaluation.metrics import glue_metrics
from kdnas.io import read_json
from kdnas.models.arch import Arch
from kdnas.models.loading import load_model_and_tokenizer
from kdnas.search.candidates import distill_candidate
from kdnas.task_params import is_multi_task, search_tasks, task_params


@dataclass
class ProxySet:
    """One task's teacher and proxy rows, loaded once for any number of candidates."""
    name: str
    task: Task
    params: dict          # the task's params (its glue.tasks overrides applied)
    teacher: object
    train: Encoded
    dev: Encoded
    importance: dict | None
    teacher_score: float  # the teacher's main metric on proxy-dev


def task_paths(params: dict, name: str, teacher: str | Path, proxies: str | Path,
               glue: str | Path) -> tuple[Path, Path]:
    """(teacher folder, proxy folder) of one of ``search_tasks(params)``."""
    model = Path(teacher) if name == params["task"] else Path(glue) / name / "teacher" / "model"
    return model, Path(proxies) / name


def load_proxy_sets(params: dict, block: str, teacher: str | Path, proxies: str | Path, glue: str | Path,
                    compute: Compute) -> list[ProxySet]:
    """Every search task's teacher and proxy sets, for training with the ``block`` params block (search or
    distill_topk); refuses a proxy folder whose logits came from another teacher than the one found."""
    sets = []
    for name in search_tasks(params):
        run = params if name == params["task"] else task_params(params, name)
        task = task_of(run)
        model_dir, proxy_dir = task_paths(params, name, teacher, proxies, glue)
        for path in (model_dir, proxy_dir):
            if not path.is_dir():
                raise KdnasError(f"{path} is missing: search.tasks = all needs every task's teacher and proxy "
                                 f"folder (run the {'proxy' if name == params['task'] else 'glue_proxy'} stage)")
        states = proxy_dir / "states.json"
        recorded = read_json(states).get(TEACHER_FINGERPRINT) if states.is_file() else None
        if recorded is not None and recorded != teacher_fingerprint(model_dir):
            raise KdnasError(f"{proxy_dir} holds the logits of another teacher than {model_dir}; rerun its proxy stage")
        model, tokenizer = load_model_and_tokenizer(model_dir, attention_implementation(params[block], task.is_regression),
                                        compute)
        max_len = run["data"]["max_length"]
        train = load_encoded(proxy_dir / "train.parquet", tokenizer, max_len)
        dev = load_encoded(proxy_dir / "dev.parquet", tokenizer, max_len)
        teacher_score = glue_metrics(task, dev.labels, dev.teacher_logits)[task.main_metric]
        if is_multi_task(params) and teacher_score <= 0:
            raise KdnasError(f"the {name} teacher scores {task.main_metric} {teacher_score:.3f} on its proxy-dev "
                             f"rows, so scores relative to it mean nothing: check its teacher (metrics of the "
                             f"teacher stage), or set search.tasks: search")
        sets.append(ProxySet(name, task, run, model, train, dev, inheritance_scores(run, proxy_dir), teacher_score))
    return sets


def relative_mean(scores: dict[str, float], teacher_scores: dict[str, float]) -> float:
    """The multi-task score: the mean over ``teacher_scores``' tasks of the candidate's score relative to the
    teacher's on the same rows (a negative score, a Matthews below 0, counts as 0)."""
    return sum(max(scores[name], 0.0) / teacher for name, teacher in teacher_scores.items()) / len(teacher_scores)


def combine(results: dict[str, dict], sets: list[ProxySet]) -> dict:
    """One result from each task's: the search task's metrics as they are, ``score_<task>`` (raw main metric)
    and ``relative_<task>`` per task, and ``score`` = the mean relative score (a negative score counts as 0),
    or the search task's raw score when it is the only task."""
    main = sets[0]
    combined = dict(results[main.name])
    if len(sets) == 1:
        return combined
    scores = {s.name: results[s.name]["score"] for s in sets}
    for s in sets:
        combined[f"score_{s.name}"] = scores[s.name]
        combined[f"relative_{s.name}"] = relative_mean({s.name: scores[s.name]}, {s.name: s.teacher_score})
    combined["score"] = relative_mean(scores, {s.name: s.teacher_score for s in sets})
    combined["kd_loss"] = sum(r["kd_loss"] for r in results.values()) / len(results)
    combined["train_seconds"] = sum(r["train_seconds"] for r in results.values())
    return combined


def distill_on_sets(arch: Arch, sets: list[ProxySet], block: dict, init: str, seed: int, compute: Compute,
                    show_progress: bool = False, checkpoint=None) -> dict:
    """Distils ``arch`` on every task's proxy set with ``block``'s recipe; the combined result.

    ``checkpoint``: a resumable stage checkpoint (distill_topk), one sub-checkpoint per task."""
    results = {}
    for s in sets:
        sub = None if checkpoint is None else checkpoint.sub(s.name) if len(sets) > 1 else checkpoint
        _, results[s.name] = distill_candidate(s.teacher, arch, s.task, s.train, s.dev, block, init, seed,
                                               show_progress=show_progress, importance=s.importance,
                                               checkpoint=sub, compute=compute)
        compute.release()
    return combine(results, sets)
