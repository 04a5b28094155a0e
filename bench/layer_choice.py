"""Which teacher layers should a shallow student inherit? (#13, a lever the hand-crafted family lacks)

The hand-crafted students, and every student the search builds, inherit uniformly spaced teacher layers
that keep the last (3 of 6 -> 1, 3, 5). Which layers a student starts from changes its weights, not its
shape, so two students that differ only in their layer set run at the same latency: a better layer set is
a gain at equal latency by construction.

Each architecture is built with each layer set (``Arch.layer_set``), distilled with the default recipe
(``distill_full``: the task's transfer rows, epochs and losses, :func:`kdnas.distillation.recipe.distill_arch`)
from each task's teacher, and scored on the task's whole dev split, for each seed. The summary gives, per
architecture and layer set, the mean over tasks of GLUE's task score (x100) and its difference from the
uniform set in the same seed, with the mean and standard deviation over seeds.

Every (architecture, layer set, task, seed) appends a row as it finishes, so a stopped run resumes.
Run after the teachers and transfer sets exist (e.g. `dvc repro transfer glue_transfer@stsb glue_transfer@cola`):
    .venv/bin/python bench/layer_choice.py --tasks sst2 stsb cola          # every pattern of LAYER_PATTERNS
    .venv/bin/python bench/layer_choice.py --patterns uniform early_last --only proxy   # the search's proxy scores
    .venv/bin/python bench/layer_choice.py --only analyse
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import yaml
from proxy_ranking import (
    BUDGETS,
    AppendOnlyTable,
    Paths,
    TaskTeacher,
    pipeline_arguments,
    proxy_phase,
)

from kdnas.device import resolve_compute
from kdnas.distillation.students import teacher_layers
from kdnas.evaluation.glue_table import task_score
from kdnas.models.arch import LAYER_PATTERNS, Arch, uniform_layers, with_layer_pattern
from kdnas.task_params import search_tasks

log = logging.getLogger("bench.layer_choice")
RUNS_CSV, SUMMARY_CSV, PROXY_CSV = "layer_choice.csv", "layer_choice_summary.csv", "layer_choice_proxy.csv"


def layer_set_name(layer_set: str, layers: int, teacher_layers: int) -> str:
    """``0.1.2 (bottom)``: the set with the patterns that give it."""
    names = [name for name, pattern in LAYER_PATTERNS.items()
             if ".".join(map(str, pattern(teacher_layers, layers))) == layer_set]
    return f"{layer_set} ({', '.join(names)})" if names else layer_set


def distill_phase(params: dict, paths: Paths, archs: list[Arch], tasks: list[str], seeds: list[int],
                  table: AppendOnlyTable, work: Path) -> None:
    compute = resolve_compute(params)
    for name in tasks:
        todo = [(a, s) for a in archs for s in seeds if not table.done(a.key, name, s)]
        if not todo:
            continue
        loaded = TaskTeacher.load(params, paths, name, compute)
        depth = loaded.teacher.config.num_hidden_layers
        for arch, seed in todo:
            _, metrics, history, dev = loaded.distil(arch, seed, work / name / f"{arch.key}-seed{seed}")
            score = task_score(loaded.task, metrics)
            table.append({"arch": arch.key, "task": name, "seed": seed, "shape": arch.shape.key,
                          "layer_set": ".".join(map(str, teacher_layers(arch, depth))), "score": score,
                          "dev_rows": len(dev), "train_rows": len(loaded.train),
                          "train_seconds": round(history["seconds"], 1)})
            log.info("%s %s seed %d: %.4f (%.0f s)", name, arch.key, seed, score, history["seconds"])
        compute.release()


def summarise(runs: pd.DataFrame, teacher_layers: int) -> pd.DataFrame:
    """Per shape and layer set: each task's score (x100, mean and std over seeds) and, where the set has every
    task, the mean over tasks and its gain over the uniform set of the same seeds."""
    tasks = sorted(runs["task"].unique())
    per_seed = runs.pivot_table(index=["shape", "layer_set", "seed"], columns="task", values="score") * 100
    per_seed["mean_score"] = per_seed[tasks].mean(axis=1, skipna=False)  # NaN unless every task was run
    rows = []
    for (shape, layer_set), sets in per_seed.groupby(level=["shape", "layer_set"]):
        layers = Arch.from_key(shape).layers
        uniform = ".".join(map(str, uniform_layers(teacher_layers, layers)))
        base = per_seed.loc[(shape, uniform)] if (shape, uniform) in per_seed.index.droplevel("seed") else None
        sets = sets.droplevel(["shape", "layer_set"])
        row = {"shape": shape, "layer_set": layer_set_name(layer_set, layers, teacher_layers),
               "seeds": " ".join(map(str, sets.index))}
        for column in [*tasks, "mean_score"]:
            row[column] = sets[column].mean()
            row[f"{column}_std"] = sets[column].std(ddof=1)
        if base is not None:
            gain = (sets["mean_score"] - base["mean_score"]).dropna()  # seeds both sets ran
            row["gain_over_uniform"], row["gain_std"] = gain.mean(), gain.std(ddof=1)
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["shape", "mean_score", "stsb" if "stsb" in tasks else tasks[0]],
                                          ascending=[True, False, False])


def main() -> None:
    parser = pipeline_arguments(__doc__.splitlines()[0], "bench/work/layer_choice")
    parser.add_argument("--archs", nargs="*", default=["L3-H384-A12-F384"], help="student shapes")
    parser.add_argument("--patterns", nargs="*", default=list(LAYER_PATTERNS), choices=list(LAYER_PATTERNS),
                        help="space.layer_patterns to compare (kdnas.models.arch.LAYER_PATTERNS)")
    parser.add_argument("--layer-sets", nargs="*", default=[],
                        help="explicit teacher layer sets too, dot-separated (1.2.5); a set of another depth is skipped")
    parser.add_argument("--tasks", nargs="*", default=None, help="default: the search's tasks")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--teacher-layers", type=int, default=6)
    parser.add_argument("--only", nargs="*", choices=["distill", "proxy", "analyse"], default=["distill", "analyse"],
                        help="proxy: the search's multi-task proxy score of each student at the search's and "
                             "distill_topk's budgets (needs the proxy stages' outputs)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    params = yaml.safe_load(Path(args.params).read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = AppendOnlyTable(out / RUNS_CSV, ["arch", "task", "seed"])
    archs = []
    if {"distill", "proxy"} & set(args.only):
        shapes = [Arch.from_key(key) for key in args.archs]
        archs = [with_layer_pattern(shape, pattern, args.teacher_layers) for shape in shapes for pattern in args.patterns]
        for shape in shapes:
            for layer_set in (tuple(int(t) for t in text.split(".")) for text in args.layer_sets):
                if len(layer_set) == shape.layers:
                    uniform = tuple(uniform_layers(args.teacher_layers, shape.layers))
                    archs.append(Arch(shape.layers, shape.hidden, shape.heads, shape.ffn,
                                      () if layer_set == uniform else layer_set))
        archs = list(dict.fromkeys(archs))
    paths = Paths(params, Path(args.results), Path(args.metrics))
    if "distill" in args.only:
        distill_phase(params, paths, archs, args.tasks or search_tasks(params), args.seeds, table, Path(args.work))
    if "proxy" in args.only:
        proxy = AppendOnlyTable(out / PROXY_CSV, ["arch", "budget", "seed"])
        for budget in BUDGETS:
            proxy_phase(params, paths, [a.key for a in archs], proxy, budget, args.seeds)
        print(proxy.frame().round(4).to_markdown(index=False))
    if "analyse" in args.only:
        summary = summarise(table.frame(), args.teacher_layers)
        summary.to_csv(out / SUMMARY_CSV, index=False)
        print(summary.round(2).to_markdown(index=False))


if __name__ == "__main__":
    main()
