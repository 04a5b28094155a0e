"""Which knob of the final distillation recipe brings the searched student closer to its teacher? (#13, #18)

The default run's student (``results/student/summary.json``) is distilled on the search task (``--tasks``: any
search tasks, each from its own teacher with its own overrides) by the
``distill_full`` code (:class:`proxy_ranking.TaskTeacher`, the path ``distill_full`` itself takes) with the
default recipe and with one knob changed at a time, each at several seeds (the seed of the student's
initialisation and of the training order; the transfer rows are the params seed's, as the pipeline's). The
knobs and their values are fixed here, before any run, so that the dev split scores them all alike:

- ``temperature``: the softened distributions of Hinton et al. (T = 2; the default is 1);
- ``lr``: twice the default learning rate (and, added after twice had won its first two seeds, four times, to
  see whether twice is past the peak);
- ``label``: the label loss's weight raised from 0.1 to 0.5 (the transfer rows carry the split's gold labels,
  most of which the teacher, fine-tuned on ``data.train_size`` rows, never saw);
- ``epochs``: two passes over the transfer set instead of one;
- ``transfer``: twice the transfer rows (``transfer.size``), the teacher's logits computed once on the new set
  by the transfer stage's own code and cached under ``bench/work/recipe_knobs/``;
- ``frozen_word_embeddings`` (added 2026-12-07): the student's word embeddings, inherited from the teacher,
  kept as they are (11.7M of the default student's 14.7M parameters: no gradient, no update), which makes a
  step cheaper. No params key does this yet: the bench freezes them around the recipe's own student.
- ``one_epoch``, ``one_epoch_lr_x2`` (added 2026-12-07): one pass for the fan-out tasks too, whose overrides
  train two, at their rate and at twice it (``--arch`` distils a hand-crafted student instead: the change must
  not favour one side of the comparison at equal latency).

A knob that a task's own overrides fix (the fan-out tasks' ``transfer.size``) is not run for that task.
Writes ``bench/out/recipe_knobs.csv`` (one row per variant, task and seed: dev metric, training seconds) and
``recipe_knobs_summary.csv`` (per task and variant: mean and standard deviation over seeds, the mean paired
difference from the default at the same seed and its standard deviation, share of the teacher's score).
Rows are appended as they finish, so a stopped run resumes. Run after `dvc repro`:
    .venv/bin/python bench/recipe_knobs.py --seeds 0 1 2
    .venv/bin/python bench/recipe_knobs.py --tasks stsb cola rte --variants default lr_x2 --seeds 0 1 2
    .venv/bin/python bench/recipe_knobs.py --only analyse
"""
from __future__ import annotations

import copy
import logging
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pandas as pd
import yaml
from proxy_ranking import (
    AppendOnlyTable,
    Paths,
    TaskTeacher,
    pipeline_arguments,
    run_params,
)

import kdnas.distillation.recipe
from kdnas.data.logit_tables import load_encoded
from kdnas.data.tasks import task_of
from kdnas.device import resolve_compute
from kdnas.evaluation.glue_table import task_score
from kdnas.io import read_json
from kdnas.models.arch import Arch
from kdnas.pipeline.transfer import write_transfer_table

log = logging.getLogger("recipe_knobs")

RUNS_CSV, SUMMARY_CSV = "recipe_knobs.csv", "recipe_knobs_summary.csv"
FROZEN_EMBEDDINGS = "frozen_word_embeddings"  # a variant of the model, not of params


@contextmanager
def word_embeddings_frozen(active: bool):
    """While active, the recipe's students are built with their word embeddings frozen."""
    if not active:
        yield
        return
    build = kdnas.distillation.recipe.build_student

    def frozen(*args, **kwargs):
        student = build(*args, **kwargs)
        student.get_input_embeddings().weight.requires_grad_(False)
        return student

    with mock.patch.object(kdnas.distillation.recipe, "build_student", frozen):
        yield


def variants(params: dict) -> dict[str, dict]:
    """Each variant's params: the default, then one knob changed."""
    def changed(block: str, key: str, value) -> dict:
        run = copy.deepcopy(params)
        run[block][key] = value
        return run

    recipe = params["distill_full"]
    label_weighted = [{**loss, "weight": 0.5} if loss["name"] == "label" else loss for loss in recipe["losses"]]
    return {
        "default": copy.deepcopy(params),
        "temperature_2": changed("distill_full", "temperature", 2.0),
        "lr_x2": changed("distill_full", "lr", 2 * recipe["lr"]),
        "lr_x4": changed("distill_full", "lr", 4 * recipe["lr"]),  # added after lr_x2's first seeds: a peak?
        "label_0.5": changed("distill_full", "losses", label_weighted),
        "epochs_x2": changed("distill_full", "epochs", 2 * recipe["epochs"]),
        "transfer_x2": changed("transfer", "size", 2 * params["transfer"]["size"]),
        FROZEN_EMBEDDINGS: copy.deepcopy(params),
        # added 2026-12-07 for the fan-out tasks, whose own overrides train two epochs: one epoch, at the
        # default rate and at twice it (half the distillation time of the student and its hand-crafted rivals)
        "one_epoch": one_epoch(params, 1.0),
        "one_epoch_lr_x2": one_epoch(params, 2.0),
    }


def one_epoch(params: dict, lr_factor: float) -> dict:
    """One pass over the transfer set for every task, the fan-out tasks' ``distill_full.epochs`` overrides
    included, at ``lr_factor`` times each task's learning rate."""
    run = copy.deepcopy(params)
    for recipe in [run["distill_full"], *((o or {}).get("distill_full", {}) for o in run["glue"]["tasks"].values())]:
        recipe.pop("epochs", None)
        if "lr" in recipe:
            recipe["lr"] *= lr_factor
    run["distill_full"]["epochs"] = 1
    run["distill_full"]["lr"] = params["distill_full"]["lr"] * lr_factor
    return run


def transfer_rows(run: dict, loaded: TaskTeacher, work: Path, compute):
    """The pipeline's transfer set when the variant keeps its size, else one of the new size, made once."""
    size = run["transfer"]["size"]
    if size == loaded.run["transfer"]["size"]:
        return loaded.train
    path = work / loaded.task.name / f"transfer_{size}.parquet"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = write_transfer_table(path, run, loaded.teacher, loaded.tokenizer, compute)
        log.info("teacher logits on %d transfer rows", len(frame))
    return load_encoded(path, loaded.tokenizer, run["data"]["max_length"])


def distill_phase(params: dict, paths: Paths, work: Path, arch: Arch, tasks: list[str], seeds: list[int],
                  names: list[str], table: AppendOnlyTable) -> None:
    compute = resolve_compute(params)
    runs = variants(params)
    for task in tasks:
        loaded = TaskTeacher.load(params, paths, task, compute)
        for seed in seeds:
            for name in names:
                run = run_params(runs[name], task)
                if table.done(name, task, seed) or (name not in ("default", FROZEN_EMBEDDINGS) and run == loaded.run):
                    continue  # done, or the task's own overrides leave the knob as it is (a task's transfer.size)
                train = transfer_rows(run, loaded, work, compute)
                variant = TaskTeacher(run, loaded.task, loaded.attn, loaded.teacher, loaded.tokenizer, train)
                with word_embeddings_frozen(name == FROZEN_EMBEDDINGS):
                    _, metrics, history, dev = variant.distil(arch, seed, work / task / name / str(seed))
                score = task_score(loaded.task, metrics)
                table.append({"variant": name, "task": task, "seed": seed, "arch": arch.key, "score": score,
                              "main_metric": metrics[loaded.task.main_metric], "train_rows": len(train),
                              "epochs": run["distill_full"]["epochs"], "lr": run["distill_full"]["lr"],
                              "train_seconds": round(history["seconds"], 1), "dev_rows": len(dev)})
                log.info("%s %s seed %d: %.4f (%.0f s)", task, name, seed, score, history["seconds"])
        compute.release()


def analyse(runs: pd.DataFrame, teacher_scores: dict[str, float], order: list[str]) -> pd.DataFrame:
    """Per task and variant: mean and sd over seeds, and the paired difference from the default at the same seed."""
    rows = []
    for task, of_task in runs.groupby("task", sort=False):
        rows += _task_summary(task, of_task, teacher_scores[task], order)
    return pd.DataFrame(rows)


def _task_summary(task: str, runs: pd.DataFrame, teacher_score: float, order: list[str]) -> list[dict]:
    wide = runs.pivot_table(index="seed", columns="variant", values="score")
    rows = []
    for name in [n for n in order if n in wide]:
        scores = wide[name].dropna()
        paired = (wide[name] - wide["default"]).dropna() if "default" in wide else pd.Series(dtype=float)
        seconds = runs.loc[runs["variant"] == name, "train_seconds"]
        rows.append({"task": task, "variant": name, "seeds": len(scores), "score_mean": scores.mean(),
                     "score_sd": scores.std(),
                     "percent_of_teacher": 100 * scores.mean() / teacher_score,
                     "delta_vs_default_mean": paired.mean(), "delta_vs_default_sd": paired.std(),
                     "train_seconds_mean": seconds.mean()})
    return rows


def main() -> None:
    parser = pipeline_arguments(__doc__.splitlines()[0], "bench/work/recipe_knobs")
    parser.add_argument("--tasks", nargs="+", help="search tasks to distil on (default: the search task)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arch", help="distil this architecture key (a hand-crafted student's, say) instead of "
                                       "the default run's student")
    parser.add_argument("--variants", nargs="+", help="a subset of the variants, in this order")
    parser.add_argument("--only", choices=["distill", "analyse"], nargs="+", default=["distill", "analyse"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    params = yaml.safe_load(open(args.params))
    paths = Paths(params, Path(args.results), Path(args.metrics))
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    order = list(variants(params))
    names = args.variants or order
    unknown = sorted(set(names) - set(order))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; known: {order}")
    table = AppendOnlyTable(out / RUNS_CSV, ["variant", "task", "seed"])
    if "distill" in args.only:
        arch = Arch.from_key(args.arch or read_json(paths.results / "student/summary.json")["winner"]["arch"])
        distill_phase(params, paths, work, arch, args.tasks or [params["task"]], args.seeds, names, table)
    if "analyse" in args.only:
        runs = table.frame()
        teachers = {task: task_score(task_of(run_params(params, task)), paths.teacher_metrics(task))
                    for task in runs["task"].unique()}
        summary = analyse(runs, teachers, order)
        summary.to_csv(out / SUMMARY_CSV, index=False)
        print(summary.to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main()
