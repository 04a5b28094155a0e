"""Does the default search beat the hand-crafted front at other seeds too? (#13)

For each seed (the params' ``seed``: the search's strategy, its candidates' proxy distillation, distill_topk
and the winner's full distillation; teachers, transfer and proxy sets stay the pipeline's), the ``search``
and ``distill_topk`` stages run as the pipeline runs them (their own CLIs, on a copy of ``params.yaml`` with
that seed, every output under ``--work``), and the first of distill_topk's ranking, the student
``distill_full`` takes when every candidate meets the latency target, is distilled with the default recipe
on every search task (:class:`proxy_ranking.TaskTeacher`, as ``distill_full`` and ``glue_distill``) and scored
on each dev split.

Its margin is its score minus the hand-crafted front's at its latency, on the GLUE score (x100, mean over the
search tasks) and on the search task, against two fronts: the family distilled at the same seed (each
member with the default recipe, as the ``baselines`` stages build it; ``search_seeds_family.csv``), and the
pipeline's own family (the params seed, ``metrics/evaluate.json`` and ``metrics/glue/<task>/evaluate.json``),
which the pipeline reports. Every latency, the winner's and the family's, is the latency profile's estimate
(``results/latency_profile/predictor.json``, batch 32, eager), so a winner of a family member's shape is
compared with that member exactly. The params' own seed is the pipeline's run: its ranking, its students'
and its family's scores are read from ``results/`` and ``metrics/``, not rerun.

Writes ``bench/out/search_seeds.csv`` (one row per seed and task), ``search_seeds_family.csv`` (one row per
seed, task and family member) and ``search_seeds_summary.csv`` (one row per seed, and the mean and standard
deviation over seeds). Run after `dvc repro`:
    .venv/bin/python bench/search_seeds.py --seeds 0 1 2     # about 30 minutes per seed on 2 cores
"""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml
from proxy_ranking import AppendOnlyTable, Paths, TaskTeacher, pipeline_arguments

from kdnas.device import resolve_compute
from kdnas.evaluation.baselines import hand_crafted_archs
from kdnas.evaluation.front import front_score
from kdnas.evaluation.glue_table import task_score
from kdnas.io import read_json
from kdnas.latency.predictor import LatencyPredictor
from kdnas.models.arch import Arch
from kdnas.pipeline.manifest import MANIFEST
from kdnas.task_params import search_tasks

log = logging.getLogger("search_seeds")
RUNS_CSV, FAMILY_CSV, SUMMARY_CSV = "search_seeds.csv", "search_seeds_family.csv", "search_seeds_summary.csv"


SEARCH_STAGES = ("search", "distill_topk")


def run_stage(stage: str, params_path: Path, results: Path, folder: Path) -> None:
    """One pipeline stage through its own CLI, with the flags the manifest gives it in dvc.yaml: the search
    stages' outputs go to ``folder``, everything else is read from the pipeline's ``results``."""
    produced = {arg.path for name in SEARCH_STAGES for arg in MANIFEST[name].outputs}
    argv = ["--params", str(params_path)]
    for arg in MANIFEST[stage].args:
        if arg.flag is not None:
            path = folder / Path(arg.path).name if arg.path in produced else results / Path(arg.path).relative_to("results")
            argv += [f"--{arg.flag}", str(path)]
    subprocess.run([sys.executable, f"stages/{stage}.py", *argv], check=True)


def search_winner(params: dict, seed: int, results: Path, work: Path) -> dict:
    """The search and distill_topk stages at ``seed``; distill_topk's first."""
    folder = work / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    seeded = folder / "params.yaml"
    seeded.write_text(yaml.safe_dump({**params, "seed": seed}, sort_keys=False))
    for stage, last_output in zip(SEARCH_STAGES, ("ranked.json", "ranking.json")):
        if not (folder / last_output).is_file():  # a stage already run at this seed is not run again
            run_stage(stage, seeded, results, folder)
    return read_json(folder / "ranking.json")[0]


def front_margin(score: float, arch: str, family: dict[str, float], predictor: LatencyPredictor) -> tuple[float, float]:
    """(the front's score at ``arch``'s estimated latency, the margin), on the family's estimated latencies."""
    members = {key: (predictor.predict(Arch.from_key(key)), value) for key, value in family.items()}
    front, _, _ = front_score(members, predictor.predict(Arch.from_key(arch)))
    return front, score - front


def family_scores(seed: int, params: dict, tasks: list[str], paths: Paths, family: pd.DataFrame) -> dict:
    """task -> {member: dev score} of the hand-crafted family at ``seed``: the pipeline's ``baselines`` stages'
    for the params seed, this bench's own distillations for any other."""
    if seed == params["seed"]:
        return {task: paths.hand_crafted_scores(task) for task in tasks}
    rows = family[family["seed"] == seed]
    return {task: dict(zip(group["arch"], group["score"])) for task, group in rows.groupby("task")}


def margins(seed: int, arch: str, scores: pd.Series, family: dict, params: dict, tasks: list[str],
            predictor: LatencyPredictor) -> dict:
    """The winner's front and margin on the GLUE score and on the search task against ``family``."""
    members = set.intersection(*(set(family.get(task, {})) for task in tasks))
    glue_family = {m: sum(family[task][m] for task in tasks) / len(tasks) for m in members}
    out = {}
    for name, score, by_member in (("glue", scores[tasks].mean(), glue_family),
                                   (params["task"], scores[params["task"]], family[params["task"]])):
        front, margin = front_margin(score, arch, by_member, predictor)
        out[f"{name}_front"], out[f"{name}_margin"] = 100 * front, 100 * margin
    return out


def main() -> None:
    parser = pipeline_arguments(__doc__.splitlines()[0], "bench/work/search_seeds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="*", choices=["run", "family", "analyse"], default=["run", "family", "analyse"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    params = yaml.safe_load(Path(args.params).read_text())
    results, metrics, out, work = Path(args.results), Path(args.metrics), Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    paths = Paths(params, results, metrics)
    tasks = search_tasks(params)
    table = AppendOnlyTable(out / RUNS_CSV, ["seed", "task"])
    family_table = AppendOnlyTable(out / FAMILY_CSV, ["seed", "task", "arch"])
    winners = {}  # seed -> distill_topk's first, for the seeds still to distil
    if "run" in args.only:
        for seed in args.seeds:
            if all(table.done(seed, task) for task in tasks):
                continue
            if seed == params["seed"]:  # the pipeline's own run: its ranking and its students' scores
                winner = read_json(results / "distill_topk/ranking.json")[0]
                glue = read_json(metrics / "glue.json")["tasks"]
                for task in tasks:
                    table.append({"seed": seed, "task": task, "arch": winner["arch"], "score": glue[task]["student"],
                                  "topk_score": winner["score"], "search_speedup": winner["search_speedup"],
                                  "train_seconds": None})
                continue
            winners[seed] = search_winner(params, seed, results, work)
            log.info("seed %d: distill_topk ranks %s first", seed, winners[seed]["arch"])
    family_seeds = [seed for seed in args.seeds if seed != params["seed"]] if "family" in args.only else []
    compute = resolve_compute(params)
    for task in tasks:  # each task's teacher and transfer rows loaded once for every seed
        todo = [(seed, winner["arch"], table, {"topk_score": winner["score"],
                                               "search_speedup": winner["search_speedup"]})
                for seed, winner in winners.items() if not table.done(seed, task)]
        members = hand_crafted_archs(read_json(paths.teacher(task) / "config.json"), params["baselines"]) \
            if family_seeds else []
        todo += [(seed, arch.key, family_table, {}) for seed in family_seeds for arch in members
                 if not family_table.done(seed, task, arch.key)]
        if not todo:
            continue
        loaded = TaskTeacher.load(params, paths, task, compute)
        for seed, arch, into, extra in todo:
            folder = work / f"seed{seed}" / ("students" if into is table else "family") / task
            _, scores, history, _ = loaded.distil(Arch.from_key(arch), seed, folder)
            score = task_score(loaded.task, scores)
            into.append({"seed": seed, "task": task, "arch": arch, "score": score, **extra,
                         "train_seconds": round(history["seconds"], 1)})
            log.info("seed %d %s %s: %.4f", seed, task, arch, score)
        compute.release()
    if "analyse" not in args.only:
        return
    runs, family = table.frame(), family_table.frame()
    if runs.empty:
        sys.exit(f"{out / RUNS_CSV} holds no runs yet: run with --only run first")
    predictor = LatencyPredictor.from_dict(read_json(results / "latency_profile/predictor.json"))
    pipeline_family = family_scores(params["seed"], params, tasks, paths, family)
    rows = []
    for seed, group in runs.groupby("seed"):
        arch = group["arch"].iloc[0]
        scores = group.set_index("task")["score"]
        row = {"seed": seed, "arch": arch, "glue_score": 100 * scores[tasks].mean(),
               params["task"]: 100 * scores[params["task"]]}
        same_seed = family_scores(seed, params, tasks, paths, family)
        if all(len(same_seed.get(task, {})) == len(pipeline_family[task]) for task in tasks):
            row.update(margins(seed, arch, scores, same_seed, params, tasks, predictor))
        row.update({f"{key}_pipeline_family": value for key, value in
                    margins(seed, arch, scores, pipeline_family, params, tasks, predictor).items()})
        rows.append(row)
    summary = pd.DataFrame(rows)
    numeric = summary.drop(columns=["seed", "arch"])
    summary = pd.concat([summary, pd.DataFrame([{"seed": "mean", "arch": "", **numeric.mean()},
                                                {"seed": "std", "arch": "", **numeric.std(ddof=1)}])])
    summary.to_csv(out / SUMMARY_CSV, index=False)
    pd.set_option("display.width", 250)
    print(summary.round(2).to_markdown(index=False))


if __name__ == "__main__":
    main()
