"""Stage 3: the architecture search."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from kdnas.data.tasks import task_of
from kdnas.device import resolve_compute
from kdnas.distillation.training import seed_everything
from kdnas.io import atomic_path, read_json, write_json
from kdnas.latency.predictor import check_same_backend, check_same_hardware
from kdnas.models.loading import load_model_and_tokenizer
from kdnas.pipeline.manifest import MANIFEST
from kdnas.search.evaluator import ParallelEvaluator, SerialEvaluator
from kdnas.search.pareto import hypervolume_curve, pareto_front
from kdnas.search.proxy_tasks import load_proxy_sets
from kdnas.search.runner import run_search, search_fingerprint, top_k
from kdnas.task_params import search_tasks


def search_tables(trials: list[dict], teacher_ms: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The trial table (with a Pareto flag), the Pareto front, and hypervolume after each trial.

    Hypervolume is taken over (score, latency / teacher latency) with reference (0, 1): the share of the
    unit square that the trials dominate, so a student slower than the teacher adds nothing.
    """
    table = pd.DataFrame(trials)
    table["pareto"] = pareto_front(table[["score", "latency_ms"]].to_numpy())
    front = table[table["pareto"]].sort_values("latency_ms")
    points = list(zip(table["score"].clip(lower=0), table["latency_ms"] / teacher_ms))
    curve = pd.DataFrame({"trial": range(1, len(table) + 1), "hypervolume": hypervolume_curve(points, (0.0, 1.0)),
                          "best_reward": table["reward"].cummax()})
    return table, front, curve


def search_stage(paths, params: dict) -> str:
    task = task_of(params)
    seed_everything(params["seed"])
    compute = resolve_compute(params)
    predictor = None
    if params["search"]["latency"]["mode"] == "predicted":
        predictor = read_json(paths.latency_predictor)
        check_same_hardware(predictor, params["latency"]["threads"])
        check_same_backend(predictor, params["search"]["latency"]["backend"])
    folders = {"teacher": paths.teacher, "proxies": paths.proxies, "glue": paths.glue}
    if params["search"].get("workers", 1) > 1:
        # each worker loads every task's teacher and proxy sets; here only the search task's teacher is needed
        evaluator = ParallelEvaluator(params, folders)
        teacher, _ = load_model_and_tokenizer(paths.teacher, compute=compute)
    else:
        sets = load_proxy_sets(params, "search", compute=compute, **folders)
        evaluator = SerialEvaluator(params, sets, compute)
        teacher = sets[0].teacher  # the search task's: the latency reference and the students' shape
    resume_key = search_fingerprint(params, MANIFEST["search"].params,
                                    [Path(paths.proxies) / name for name in search_tasks(params)])
    try:
        trials, state = run_search(params, teacher, task, Path(paths.trials), evaluator, predictor,
                                   resume_key=resume_key)
    finally:
        evaluator.close()
    ranked = top_k(trials, len(trials))  # the full ranking: distill_topk takes its k from it
    table, front, curve = search_tables(trials, state["teacher_latency_ms"])
    for frame, path in ((table, paths.trials_csv), (front, paths.pareto), (curve, paths.hypervolume)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    write_json(paths.ranked, ranked)
    write_json(paths.metrics, {
        "strategy": params["search"]["strategy"], "trials": len(trials), "best_reward": ranked[0]["reward"],
        "best_arch": ranked[0]["arch"], "hypervolume": float(curve["hypervolume"].iloc[-1]),
        "pareto_size": int(table["pareto"].sum()), "teacher_latency_ms": state["teacher_latency_ms"],
        "tasks": search_tasks(params), "space_size": state["space_size"], "prescreened_size": state["prescreened_size"],
        "search_seconds": float(table["seconds"].sum()),
        "prediction_error_per_episode": state["strategy"].get("prediction_errors", [])})
    tasks = search_tasks(params)
    scored = (f"mean score relative to the teachers over {', '.join(tasks)}" if len(tasks) > 1
              else task.main_metric)
    return (f"wrote {paths.trials} ({len(trials)} trials) and {paths.ranked}: best {ranked[0]['arch']} "
            f"reward {ranked[0]['reward']:.4f} ({scored} {ranked[0]['score']:.4f}, {ranked[0]['speedup']:.2f}x)")
