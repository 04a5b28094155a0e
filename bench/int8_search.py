"""Does a search for the int8 runtime find a better deployed student than an eager search quantised after? (#18)

Two routes to an int8 student, for each seed (the params' ``seed``, which drives the search, its candidates'
proxy distillation and the winner's full distillation; teachers, transfer and proxy sets stay the pipeline's):

- **eager**: the default search (``search.latency.backend: eager`` on the pipeline's latency profile), its winner
  quantised afterwards, as ``export`` ships it;
- **int8**: the same search on ``onnxruntime-int8`` latency (a profile of quantised, fused candidates made by
  this bench with the latency_profile stage's code), asked for a student at least as fast *deployed* as the
  eager route's: the reward's target and the prescreen's lower bound are the eager winner's estimated int8
  speed-up over the eager fp32 teacher (the upper bound stays the fastest hand-crafted student's estimate).

Both searches run through the search stage's own loop (:func:`kdnas.search.runner.run_search`, multi-task as
params say) and share a cache of candidate results: a candidate's result depends on its architecture, seed
and proxy sets only, so one both routes propose is distilled once. Each winner is then distilled with the
default recipe on every search task (:func:`kdnas.distillation.recipe.distill_arch`, as ``distill_full`` and
``glue_distill``), exported as ``export`` ships it (``export.fusion``, ``export.int8``; no drop bound) and
scored through ONNX Runtime on each dev split; last, every winner is timed with the teacher by the latency
stage's code (eager PyTorch, and ONNX Runtime int8 in a process of its own; both batch sizes).

Writes ``bench/out/int8_search.csv`` (one row per seed and route: the winner, its proxy reward, estimated
and measured int8 speed-ups, each task's int8 dev score and the GLUE score), ``int8_search_summary.csv``
(mean and standard deviation over seeds per route, and of the int8 route minus the eager route within a seed)
and ``int8_search_profile.json`` (the int8 latency predictor and its held-out fit). The eager route is the
default search at each seed, so each of its winners is also set against the hand-crafted front (#13): its
eager GLUE score minus the front's at its measured eager latency, the family's scores being the pipeline's
(``baselines`` stages, seed 0; recorded in ``<name>_family.csv`` by the time phase, so ``analyse`` gives the
same margins after the pipeline moves on) and its latencies timed in this bench's run.

Phases (``--only``): profile and time measure latency, so run them alone on the cores; search and distill
append as they go and resume. Run after `dvc repro`:
    .venv/bin/python bench/int8_search.py --seeds 0 1 2
    # the same with a params variant, its CSVs beside (bench/out/int8_search_without_start*.csv: a copy of
    # params.yaml with search.start_from_hand_crafted: false)
    .venv/bin/python bench/int8_search.py --params params.nostart.yaml --name int8_search_without_start
"""
from __future__ import annotations

import copy
import json
import logging
import math
from pathlib import Path

import pandas as pd
import yaml
from proxy_ranking import AppendOnlyTable, Paths, TaskTeacher, pipeline_arguments

from kdnas.data.tasks import task_of
from kdnas.deploy.onnx_runtime import export_onnx
from kdnas.device import resolve_compute
from kdnas.distillation.training import seed_everything
from kdnas.evaluation.baselines import hand_crafted_archs
from kdnas.evaluation.front import front_score
from kdnas.evaluation.glue_table import task_score
from kdnas.io import read_json, write_json
from kdnas.latency.predictor import LatencyPredictor
from kdnas.models.arch import Arch
from kdnas.models.loading import load_model_and_tokenizer
from kdnas.pipeline.export import int8_student
from kdnas.pipeline.latency import latency_table
from kdnas.pipeline.latency_profile import profile_space
from kdnas.pipeline.manifest import MANIFEST
from kdnas.search.evaluator import SerialEvaluator
from kdnas.search.proxy_tasks import load_proxy_sets
from kdnas.search.runner import run_search, search_fingerprint, top_k
from kdnas.task_params import search_tasks

log = logging.getLogger("bench.int8_search")
INT8 = "onnxruntime-int8"
ROUTES = ("eager", "int8")
PROFILE_JSON, SCORES_CSV = "int8_search_profile.json", "int8_search_scores.csv"  # shared by every --name
WINNERS_CSV, LATENCY_CSV, RUNS_CSV, SUMMARY_CSV = "{}_winners.csv", "{}_latency.csv", "{}.csv", "{}_summary.csv"
FAMILY_CSV = "{}_family.csv"  # the hand-crafted students' dev scores when the family was timed


def estimated_speedup(predictor: dict, arch: Arch) -> float:
    """A profile's speed-up estimate over the eager fp32 teacher it timed beside the sample."""
    return predictor["teacher_latency_ms"] / LatencyPredictor.from_dict(predictor).predict(arch)


def profile_phase(params: dict, paths: Paths, out: Path) -> dict:
    path = out / PROFILE_JSON
    if path.is_file():
        return read_json(path)
    run = copy.deepcopy(params)
    run["search"]["latency"]["backend"] = INT8
    teacher, _ = load_model_and_tokenizer(paths.teacher(params["task"]))
    profile = profile_space(teacher, run)
    write_json(path, {**profile.to_json(), "held_out": profile.metrics})
    log.info("int8 profile: held-out Spearman %.3f, MAPE %.1f%%", profile.metrics["spearman"],
             profile.metrics["mape_percent"])
    return read_json(path)


class CachedEvaluator:
    """The search's serial evaluator with a JSON Lines cache of (architecture, seed) -> result, shared by routes."""

    def __init__(self, inner: SerialEvaluator, path: Path, seed: int):
        self.inner, self.path, self.seed = inner, path, seed
        self.cache = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                self.cache[(row["arch"], row["seed"])] = row["result"]

    def __call__(self, archs: list[Arch]) -> list[dict]:
        todo = [a for a in archs if (a.key, self.seed) not in self.cache]
        for arch, result in zip(todo, self.inner(todo)):
            self.cache[(arch.key, self.seed)] = result
            with open(self.path, "a") as handle:
                handle.write(json.dumps({"arch": arch.key, "seed": self.seed, "result": result}) + "\n")
        return [self.cache[(a.key, self.seed)] for a in archs]

    def close(self) -> None:
        self.inner.close()


def route_params(params: dict, seed: int, route: str, target: float | None) -> dict:
    run = copy.deepcopy(params)
    run["seed"] = seed
    if route == "int8":
        run["search"]["latency"]["backend"] = INT8
        run["search"]["reward"]["target_speedup"] = target
        run["search"]["prescreen"] = {**(run["search"].get("prescreen") or {}), "min_speedup": target}
    return run


def search_phase(params: dict, results: Path, work: Path, seeds: list[int], int8_profile: dict,
                 winners: AppendOnlyTable) -> None:
    eager_profile = read_json(results / "latency_profile/predictor.json")
    compute = resolve_compute(params)
    folders = {"teacher": results / "teacher/model", "proxies": results / "proxies", "glue": results / "glue"}
    sets = None
    for seed in seeds:
        target = None
        for route in ROUTES:
            if route == "int8":
                eager_winner = winners.frame().set_index(["seed", "route"]).loc[(seed, "eager"), "arch"]
                target = round(estimated_speedup(int8_profile, Arch.from_key(eager_winner)), 4)
            if winners.done(seed, route):
                continue
            run = route_params(params, seed, route, target)
            sets = sets or load_proxy_sets(run, "search", compute=compute, **folders)
            evaluator = CachedEvaluator(SerialEvaluator(run, sets, compute), work.parent / "candidates.jsonl", seed)
            seed_everything(seed)
            key = search_fingerprint(run, MANIFEST["search"].params, [folders["proxies"] / t for t in search_tasks(run)])
            profile = int8_profile if route == "int8" else eager_profile
            trials, state = run_search(run, sets[0].teacher, task_of(run), work / f"{route}-seed{seed}/trials.jsonl",
                                       evaluator, profile, resume_key=key)
            best = top_k(trials, 1)[0]
            arch = Arch.from_key(best["arch"])
            winners.append({"seed": seed, "route": route, "arch": best["arch"], "reward": best["reward"],
                            "proxy_score": best["score"], "target_speedup": target or run["search"]["reward"]["target_speedup"],
                            "band_size": state["prescreened_size"], "trials": len(trials),
                            "distilled": len({t["arch"] for t in trials}),
                            "est_eager_speedup": estimated_speedup(eager_profile, arch),
                            "est_int8_speedup": estimated_speedup(int8_profile, arch)})
            log.info("seed %d %s: %s reward %.4f", seed, route, best["arch"], best["reward"])


def distill_phase(params: dict, paths: Paths, work: Path, winners: pd.DataFrame, scores: AppendOnlyTable) -> None:
    """Each winner distilled at its seed on every search task, exported and quantised as export ships it."""
    compute = resolve_compute(params)
    todo = winners[["arch", "seed"]].drop_duplicates().itertuples(index=False)
    todo = list(todo)
    for name in search_tasks(params):
        pending = [(a, s) for a, s in todo if not scores.done(a, s, name)]
        if not pending:
            continue
        loaded = TaskTeacher.load(params, paths, name, compute)
        run, task = loaded.run, loaded.task
        teacher_score = task_score(task, paths.teacher_metrics(name))
        for key, seed in pending:
            folder = work / "students" / name / f"{key}-seed{seed}"
            student, eager, history, dev = loaded.distil(Arch.from_key(key), seed, folder)
            export_onnx(student, folder / "model.onnx", params["export"]["fusion"])
            int8 = int8_student(task, {**run, "seed": seed}, loaded.tokenizer, folder, dev,
                                {**run["export"], "int8_max_drop": math.inf}, params["latency"]["threads"])
            scores.append({"arch": key, "seed": seed, "task": name, "teacher": teacher_score,
                           "eager": task_score(task, eager), "onnx_fp32": task_score(task, int8.fp32),
                           "int8": task_score(task, int8.int8), "int8_method": int8.method,
                           "agreement": int8.agreement, "train_seconds": round(history["seconds"], 1)})
            log.info("%s %s seed %d: eager %.4f, int8 %.4f (%s)", name, key, seed, task_score(task, eager),
                     task_score(task, int8.int8), int8.method)
        compute.release()


def time_phase(params: dict, paths: Paths, out: Path, name: str, archs: list[str]) -> None:
    """The winners, the hand-crafted family (for the margins) and the teacher, timed as the latency stage does;
    the family's dev scores are recorded beside its latencies, so a later ``analyse`` does not read whatever the
    pipeline's metrics say by then."""
    family_scores(params, paths).to_csv(out / FAMILY_CSV.format(name), index=False)
    teacher, _ = load_model_and_tokenizer(paths.teacher(params["task"]))
    cfg = {**params["latency"], "backends": ["eager", INT8]}
    family = [a for a in hand_crafted_archs(teacher.config, params["baselines"]) if a.key not in archs]
    table = latency_table(teacher, [Arch.from_key(a) for a in archs] + family, cfg, params["space"]["init"],
                          params["export"]["fusion"])
    table.to_csv(out / LATENCY_CSV.format(name), index=False)


def family_scores(params: dict, paths: Paths) -> pd.DataFrame:
    """The hand-crafted students' dev score on each search task (task, arch, score), from the pipeline's metrics."""
    return pd.DataFrame([{"task": name, "arch": arch, "score": score} for name in search_tasks(params)
                         for arch, score in paths.hand_crafted_scores(name).items()])


def family_glue_scores(out: Path, name: str) -> dict[str, float]:
    """The hand-crafted students' GLUE score (x100) over the tasks recorded when the family was timed."""
    path = out / FAMILY_CSV.format(name)
    if not path.is_file():
        raise SystemExit(f"{path}: missing; run --only time first (it records the family's scores)")
    return (100 * pd.read_csv(path).groupby("arch")["score"].mean()).to_dict()


def glue_margin(family: dict[str, float], family_ms: pd.Series, score: float, ms: float) -> tuple[float, str]:
    """``score`` minus the hand-crafted front's GLUE score at ``ms`` (kdnas.evaluation.front's interpolation)."""
    front, _, where = front_score({arch: (family_ms[arch], family[arch]) for arch in family}, ms)
    return score - front, where


def analyse(params: dict, out: Path, name: str) -> pd.DataFrame:
    winners = pd.read_csv(out / WINNERS_CSV.format(name))
    scores = pd.read_csv(out / SCORES_CSV)
    latency = pd.read_csv(out / LATENCY_CSV.format(name))
    speedup = latency.pivot_table(index="model", columns=["backend", "batch_size"], values="speedup_vs_eager")
    eager_ms = latency[latency.backend == "eager"].pivot(index="model", columns="batch_size", values="median_ms")
    family = family_glue_scores(out, name)
    rows = []
    for winner in winners.itertuples(index=False):
        mine = scores[(scores.arch == winner.arch) & (scores.seed == winner.seed)].set_index("task")
        row = {**winner._asdict(), **{f"{'int8' if backend == INT8 else backend}_speedup_bs{bs}":
                                      speedup.loc[winner.arch, (backend, bs)] for backend, bs in speedup.columns}}
        for task in mine.index:
            row[f"int8_{task}"] = 100 * mine.loc[task, "int8"]
        row["glue_int8"] = 100 * mine["int8"].mean()
        row["glue_eager"] = 100 * mine["eager"].mean()
        row["glue_teachers"] = 100 * mine["teacher"].mean()
        for bs in eager_ms.columns:  # the eager student against the hand-crafted front (#13), at its eager latency
            row[f"glue_margin_eager_bs{bs}"], row[f"front_position_bs{bs}"] = glue_margin(
                family, eager_ms[bs], row["glue_eager"], eager_ms.loc[winner.arch, bs])
        row[f"{params['task']}_int8_share_of_teacher"] = (100 * mine.loc[params["task"], "int8"]
                                                          / mine.loc[params["task"], "teacher"])
        rows.append(row)
    runs = pd.DataFrame(rows)
    runs.to_csv(out / RUNS_CSV.format(name), index=False)
    numeric = [c for c in runs.columns if c.startswith(("int8_", "eager_", "glue_", "est_", f"{params['task']}_"))
               and c != "int8_method"] + ["reward"]
    by_route = runs.groupby("route")[numeric].agg(["mean", "std"])
    paired = runs.pivot(index="seed", columns="route", values=numeric)
    difference = pd.DataFrame({c: paired[(c, "int8")] - paired[(c, "eager")] for c in numeric})
    summary = []
    for route in ROUTES:
        summary.append({"row": route, **{f"{c}_{s}": by_route.loc[route, (c, s)] for c in numeric for s in ("mean", "std")}})
    summary.append({"row": "int8 - eager", **{f"{c}_{s}": getattr(difference[c], s)() for c in numeric
                                              for s in ("mean", "std")}})
    summary = pd.DataFrame(summary)
    summary.to_csv(out / SUMMARY_CSV.format(name), index=False)
    pd.set_option("display.width", 250)
    print(runs[["seed", "route", "arch", "reward", "est_int8_speedup"] + [c for c in runs.columns
                                                                          if c.startswith(("int8_", "glue_"))]]
          .round(3).to_markdown(index=False))
    print(summary.set_index("row").T.round(3).to_markdown())
    return summary


def main() -> None:
    parser = pipeline_arguments(__doc__.splitlines()[0], "bench/work/int8_search")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--name", default="int8_search", help="prefix of the output CSVs (one per params variant; "
                                                                "distilled winners' scores are shared)")
    parser.add_argument("--only", nargs="*", choices=["profile", "search", "distill", "time", "analyse"],
                        default=["profile", "search", "distill", "time", "analyse"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    params = yaml.safe_load(open(args.params))
    out, results, work = Path(args.out), Path(args.results), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    paths = Paths(params, results, Path(args.metrics))
    name = args.name
    winners = AppendOnlyTable(out / WINNERS_CSV.format(name), ["seed", "route"])
    if "profile" in args.only or "search" in args.only:
        int8_profile = profile_phase(params, paths, out)
    if "search" in args.only:
        search_phase(params, results, work / name, args.seeds, int8_profile, winners)
    chosen = winners.frame()
    chosen = chosen[chosen.seed.isin(args.seeds)]
    if "distill" in args.only:
        distill_phase(params, paths, work, chosen, AppendOnlyTable(out / SCORES_CSV, ["arch", "seed", "task"]))
    if "time" in args.only:
        time_phase(params, paths, out, name, sorted(set(chosen.arch)))
    if "analyse" in args.only:
        analyse(params, out, name)


if __name__ == "__main__":
    main()
