"""Does the proxy rank what full distillation ranks, among the students the search decides between? (#13)

The architectures are the search's own trials (``results/search/trials.csv``): the candidates the strategy
chose inside the prescreen band, the region where the search makes its decision. Each is

- **fully distilled** with the default recipe (``distill_full``: every transfer row, its epochs and losses)
  from each search task's teacher and scored on that task's whole dev split, exactly as ``distill_full`` /
  ``glue_distill`` would (:func:`kdnas.distillation.recipe.distill_arch`, :func:`kdnas.evaluation.scoring.score_models`). A member
  of the hand-crafted family is not distilled again: the ``baselines`` stages built it with the same code,
  recipe and seed, so their saved student is scored instead (``source: baselines``);
- **proxy-scored** by every signal tried: the trial log's own (search budget, the params seed), the same
  budget with other seeds (``--seeds``), and distill_topk's budget (``distill_topk`` block: two epochs).

Then Kendall's tau and Spearman's rho between each signal and each full-distillation target (the search
task's dev score, the GLUE score over the search tasks, the mean score relative to each task's teacher), over
all trials and over the best by the search's proxy (``--top``), and each signal's **regret**: how far the
student it ranks first falls below the best student of the set on that target.

Every phase appends a row as it finishes one (architecture, task) or (architecture, signal), so a stopped
run resumes where it was. Run after `dvc repro` (it reads results/ and metrics/):
    .venv/bin/python bench/proxy_ranking.py                      # everything (about 80 min on 2 cores)
    .venv/bin/python bench/proxy_ranking.py --only analyse       # the tables again from the CSVs
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from scipy.stats import kendalltau, spearmanr

from kdnas.data.logit_tables import load_encoded, read_logit_table
from kdnas.data.tasks import Task, task_of
from kdnas.device import resolve_compute
from kdnas.distillation.losses import attention_implementation
from kdnas.distillation.recipe import distill_arch
from kdnas.distillation.training import seed_everything
from kdnas.evaluation.baselines import hand_crafted_archs
from kdnas.evaluation.front import front_score
from kdnas.evaluation.glue_table import task_score
from kdnas.evaluation.metrics import glue_metrics
from kdnas.evaluation.scoring import score_models
from kdnas.io import read_json
from kdnas.latency.predictor import LatencyPredictor
from kdnas.models.arch import Arch
from kdnas.models.loading import load_model_and_tokenizer, save_model
from kdnas.search.proxy_tasks import distill_on_sets, load_proxy_sets, relative_mean
from kdnas.task_params import search_tasks, task_params

log = logging.getLogger("proxy_ranking")

FULL_CSV, PROXY_CSV, RANKING_CSV = "proxy_ranking_full.csv", "proxy_ranking_proxy.csv", "proxy_ranking.csv"
ARCHS_CSV = "proxy_ranking_archs.csv"
# the proxy budgets a signal can come from: the params block that trains it
BUDGETS = {"search": "search", "topk": "distill_topk"}


class Paths:
    """Where the default pipeline keeps each task's teacher, transfer set and hand-crafted students."""

    def __init__(self, params: dict, results: Path, metrics: Path):
        self.params, self.results, self.metrics = params, results, metrics

    def _is_search_task(self, task: str) -> bool:
        return task == self.params["task"]

    def teacher(self, task: str) -> Path:
        return self.results / ("teacher" if self._is_search_task(task) else f"glue/{task}/teacher") / "model"

    def transfer(self, task: str) -> Path:
        return self.results / ("transfer" if self._is_search_task(task) else f"glue/{task}/transfer") / "logits.parquet"

    def baseline(self, task: str, arch: str) -> Path:
        return self.results / ("baselines" if self._is_search_task(task) else f"glue/{task}/baselines") / "models" / arch

    def evaluate_metrics(self, task: str) -> dict:
        """The task's ``evaluate`` (or ``glue_evaluate``) metrics file."""
        return read_json(self.metrics / ("evaluate.json" if self._is_search_task(task) else f"glue/{task}/evaluate.json"))

    def teacher_metrics(self, task: str) -> dict:
        return self.evaluate_metrics(task)["teacher"]

    def hand_crafted_scores(self, task: str) -> dict[str, float]:
        """{member: dev score} of the pipeline's hand-crafted students on ``task``."""
        return self.evaluate_metrics(task)["hand_crafted"]["scores"]


def run_params(params: dict, task: str) -> dict:
    return params if task == params["task"] else task_params(params, task)


class AppendOnlyTable:
    """A CSV the bench appends rows to as it finishes them; ``done`` says which keys it holds already."""

    def __init__(self, path: Path, key: list[str]):
        self.path, self.key = path, key
        self._done = {tuple(str(v) for v in row) for row in self.frame()[key].itertuples(index=False)}

    def frame(self) -> pd.DataFrame:
        return pd.read_csv(self.path) if self.path.is_file() else pd.DataFrame(columns=self.key)

    def done(self, *values) -> bool:
        return tuple(str(v) for v in values) in self._done

    def append(self, row: dict) -> None:
        pd.DataFrame([row]).to_csv(self.path, mode="a", header=not self.path.is_file(), index=False)
        self._done.add(tuple(str(row[k]) for k in self.key))


@dataclass
class TaskTeacher:
    """One search task loaded as ``distill_full`` / ``glue_distill`` load it: its params, the attention its
    recipe needs, its teacher and tokenizer, and its transfer rows."""

    run: dict
    task: Task
    attn: str | None
    teacher: object
    tokenizer: object
    train: object

    @classmethod
    def load(cls, params: dict, paths: Paths, name: str, compute) -> "TaskTeacher":
        run = run_params(params, name)
        task = task_of(run)
        attn = attention_implementation(run["distill_full"], task.is_regression)
        teacher, tokenizer = load_model_and_tokenizer(paths.teacher(name), attn_implementation=attn, compute=compute)
        return cls(run, task, attn, teacher, tokenizer, load_encoded(paths.transfer(name), tokenizer,
                                                                     run["data"]["max_length"]))

    def distil(self, arch: Arch, seed: int, folder: Path) -> tuple[object, dict, dict, pd.DataFrame]:
        """``arch`` distilled with the default recipe at ``seed`` (magnitude inheritance, as the pipeline does for
        every task), saved to ``folder`` and scored on the task's dev split: (student, metrics, history, dev)."""
        seeded = {**self.run, "seed": seed}
        seed_everything(seed)
        student, _, history = distill_arch(arch, self.teacher, self.train, seeded, None, None, self.attn)
        save_model(student, self.tokenizer, folder)
        scores, _, dev = score_models(seeded, self.task, {arch.key: str(folder)})
        return student, scores[arch.key], history, dev


def full_phase(params: dict, paths: Paths, archs: list[str], table: AppendOnlyTable, work: Path) -> None:
    """Each architecture distilled with the default recipe on each search task and scored on its dev split."""
    compute = resolve_compute(params)
    for name in search_tasks(params):
        todo = [a for a in archs if not table.done(a, name)]
        if not todo:
            continue
        loaded = TaskTeacher.load(params, paths, name, compute)
        run, task, train = loaded.run, loaded.task, loaded.train
        family = {a.key for a in hand_crafted_archs(loaded.teacher.config, run["baselines"])}
        for key in todo:
            folder = paths.baseline(name, key)
            if key not in family or not folder.is_dir():
                folder = work / name / key
                _, metrics, history, dev = loaded.distil(Arch.from_key(key), run["seed"], folder)
                seconds, source = history["seconds"], "distilled"
            else:
                scores, _, dev = score_models(run, task, {key: str(folder)})
                metrics, seconds, source = scores[key], 0.0, "baselines"
            table.append({"arch": key, "task": name, "score": task_score(task, metrics),
                          "main_metric": metrics[task.main_metric], "dev_rows": len(dev),
                          "train_rows": len(train), "train_seconds": round(seconds, 1), "source": source})
            log.info("full %s %s: %.4f (%s)", name, key, task_score(task, metrics), source)
        compute.release()


def proxy_phase(params: dict, paths: Paths, archs: list[str], table: AppendOnlyTable, budget: str,
                seeds: list[int], label: str | None = None) -> None:
    """Each architecture's multi-task proxy score at one budget, for each seed, recorded as ``label`` (default:
    the budget's name)."""
    label = label or budget
    todo = [(a, s) for s in seeds for a in archs if not table.done(a, label, s)]
    if not todo:
        return
    block = BUDGETS[budget]
    compute = resolve_compute(params)
    sets = load_proxy_sets(params, block, teacher=paths.teacher(params["task"]), proxies=paths.results / "proxies",
                           glue=paths.results / "glue", compute=compute)
    for key, seed in todo:
        result = distill_on_sets(Arch.from_key(key), sets, params[block], params["space"]["init"], seed, compute)
        table.append({"arch": key, "budget": label, "seed": seed, "score": result["score"],
                      "kd_loss": result["kd_loss"], "train_seconds": round(result["train_seconds"], 1),
                      **{c: v for c, v in result.items() if c.startswith("score_")}})
        log.info("proxy %s seed %d %s: %.4f", label, seed, key, result["score"])


def trial_signals(trials: pd.DataFrame, params: dict) -> pd.DataFrame:
    """The search's own signals, from its trial log (search budget, the params seed)."""
    out = trials[["arch", "score", "kd_loss", *[c for c in trials if c.startswith("score_")]]].copy()
    out["budget"], out["seed"] = "search", params["seed"]
    return out


def signals_table(trials: pd.DataFrame, proxy: pd.DataFrame, params: dict) -> pd.DataFrame:
    """arch -> every ranking signal (higher = ranked better)."""
    rows = pd.concat([trial_signals(trials, params), proxy], ignore_index=True)
    rows = rows.drop_duplicates(["arch", "budget", "seed"], keep="first")  # the trial log's own rows win
    signals = pd.DataFrame(index=sorted(trials["arch"]))
    tasks = search_tasks(params)
    for budget, group in rows.groupby("budget"):
        first = group[group["seed"] == params["seed"]].set_index("arch")
        name = "proxy" if budget == "search" else f"proxy_{budget}"
        signals[name] = first["score"]
        signals[f"{name}_{params['task']}"] = first[f"score_{params['task']}"]
        signals[f"{name}_kd_loss"] = -first["kd_loss"]
        if group["seed"].nunique() > 1:
            signals[f"{name}_mean_of_{group['seed'].nunique()}_seeds"] = group.groupby("arch")["score"].mean()
    for t in tasks:
        if t != params["task"]:
            signals[f"proxy_{t}"] = trials.set_index("arch")[f"score_{t}"]
    # naive signals a proxy must beat: size and (estimated) slowness
    signals["params"] = trials.set_index("arch")["params"]
    signals["estimated_latency"] = trials.set_index("arch")["latency_ms"]
    return signals


def targets_table(full: pd.DataFrame, paths: Paths, params: dict) -> pd.DataFrame:
    """arch -> the full-distillation targets: the search task's dev score, the GLUE score (x100) over the
    search tasks, and the mean score relative to each task's teacher."""
    tasks = search_tasks(params)
    scores = full.pivot(index="arch", columns="task", values="score")
    complete = scores.dropna(subset=[t for t in tasks if t in scores])
    if set(tasks) - set(scores.columns):
        complete = complete.iloc[0:0]
    teacher = {t: task_score(task_of(run_params(params, t)), paths.teacher_metrics(t)) for t in tasks}
    out = pd.DataFrame(index=scores.index)
    out[f"full_{params['task']}"] = scores[params["task"]]
    if len(complete):
        out["full_glue"] = 100 * complete[tasks].mean(axis=1)
        out["full_relative"] = sum(complete[t].clip(lower=0) / teacher[t] for t in tasks) / len(tasks)
    return out


def teacher_proxy_scores(params: dict, paths: Paths) -> dict[str, float]:
    """Each search task's teacher's main metric on its proxy-dev rows: what the multi-task score divides by."""
    scores = {}
    for name in search_tasks(params):
        task = task_of(run_params(params, name))
        frame, logits = read_logit_table(paths.results / "proxies" / name / "dev.parquet")
        scores[name] = glue_metrics(task, frame["label"].to_numpy(), logits)[task.main_metric]
    return scores


def rescored(rows: pd.DataFrame, teacher: dict[str, float], prefix: str = "score_") -> pd.Series:
    """Each row's multi-task score over ``teacher``'s tasks, from its raw per-task scores (``<prefix><task>``
    columns): the search's score (:func:`kdnas.search.proxy_tasks.relative_mean`) for today's search tasks,
    whatever tasks the rows were scored on beside them. Each task's proxy distillation is seeded by the
    architecture alone, so a task's score does not depend on which other tasks were scored."""
    return rows.apply(lambda row: relative_mean({t: row[f"{prefix}{t}"] for t in teacher}, teacher), axis=1)


def rank_agreement(signals: pd.DataFrame, targets: pd.DataFrame, subsets: dict[str, list[str]]) -> pd.DataFrame:
    rows = []
    for subset, archs in subsets.items():
        for target in targets:
            for signal in signals:
                pair = pd.concat([signals.loc[archs, signal], targets.loc[archs, target]], axis=1).dropna()
                if len(pair) < 4:
                    continue
                x, y = pair.iloc[:, 0], pair.iloc[:, 1]
                chosen = x.idxmax()
                rows.append({"subset": subset, "n": len(pair), "target": target, "signal": signal,
                             "kendall_tau": kendalltau(x, y).statistic, "spearman_rho": spearmanr(x, y).statistic,
                             "ranked_first": chosen, "its_target": y[chosen], "best": y.idxmax(),
                             "regret": y.max() - y[chosen]})
    return pd.DataFrame(rows)


def front_margins(targets: pd.DataFrame, params: dict, paths: Paths) -> pd.DataFrame:
    """Each fully distilled architecture against the hand-crafted front, all latencies the latency profile's
    estimates (most trials were never timed): does the region hold any student above the front?"""
    predictor_json = read_json(paths.results / "latency_profile/predictor.json")
    predictor = LatencyPredictor.from_dict(predictor_json)
    teacher_config = read_json(paths.teacher(params["task"]) / "config.json")
    family = [a.key for a in hand_crafted_archs(teacher_config, params["baselines"])]
    rows = []
    for target in [c for c in ("full_glue", f"full_{params['task']}") if c in targets]:
        members = {k: (predictor.predict(Arch.from_key(k)), targets.loc[k, target]) for k in family
                   if k in targets.index and pd.notna(targets.loc[k, target])}
        if len(members) < 2:
            continue
        for arch in targets.index:
            ms = predictor.predict(Arch.from_key(arch))
            front, _, where = front_score(members, ms)
            rows.append({"arch": arch, "target": target, "estimated_speedup": predictor_json["teacher_latency_ms"] / ms,
                         "score": targets.loc[arch, target], "front": front,
                         "margin": targets.loc[arch, target] - front, "where": where})
    return pd.DataFrame(rows)


def print_agreement(agreement: pd.DataFrame) -> None:
    """Each (subset, target)'s signals, best Kendall tau first."""
    for (subset, target), group in agreement.groupby(["subset", "target"], sort=False):
        print(f"\n{subset} (n={group['n'].iloc[0]}), target {target}")
        print(group.sort_values("kendall_tau", ascending=False)[
            ["signal", "kendall_tau", "spearman_rho", "ranked_first", "regret"]].round(3).to_markdown(index=False))


def pipeline_arguments(description: str, work: str) -> argparse.ArgumentParser:
    """A parser with the flags of a bench that reads the default pipeline's outputs and distils students."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--results", default="results")
    parser.add_argument("--metrics", default="metrics")
    parser.add_argument("--out", default="bench/out")
    parser.add_argument("--work", default=work, help="fully distilled students (not in git)")
    return parser


def main() -> None:
    parser = pipeline_arguments(__doc__.splitlines()[0], "bench/work/proxy_ranking")
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2], help="extra seeds of the search budget")
    parser.add_argument("--top", type=int, default=8, help="the subset of the best trials by the search's proxy")
    parser.add_argument("--only", nargs="*", choices=["full", "seeds", "topk", "analyse"],
                        default=["full", "seeds", "topk", "analyse"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    params = yaml.safe_load(open(args.params))
    out, results = Path(args.out), Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    paths = Paths(params, results, Path(args.metrics))
    trials = pd.read_csv(results / "search/trials.csv").sort_values("score", ascending=False)
    archs = list(trials["arch"])
    full = AppendOnlyTable(out / FULL_CSV, ["arch", "task"])
    foreign = set(full.frame()["arch"]) - set(archs)
    if foreign:  # --out holds another search's students: mixing the two would rank a set nobody searched
        print(f"{out / FULL_CSV} holds {len(foreign)} architectures that are not among "
              f"{results / 'search/trials.csv'}'s trials (e.g. {sorted(foreign)[0]}): give another --out",
              file=sys.stderr)
        sys.exit(2)
    proxy = AppendOnlyTable(out / PROXY_CSV, ["arch", "budget", "seed"])
    if "full" in args.only:
        full_phase(params, paths, archs, full, Path(args.work))
    if "seeds" in args.only:
        proxy_phase(params, paths, archs, proxy, "search", args.seeds)
    if "topk" in args.only:
        proxy_phase(params, paths, archs, proxy, "topk", [params["seed"]])
    if "analyse" not in args.only:
        return
    signals = signals_table(trials, proxy.frame(), params)
    targets = targets_table(full.frame(), paths, params)
    subsets = {"all": archs, f"top{args.top}": archs[: args.top]}
    agreement = rank_agreement(signals, targets, subsets)
    agreement.to_csv(out / RANKING_CSV, index=False)
    per_arch = signals.join(targets)
    margins = front_margins(targets, params, paths)
    if len(margins):
        per_arch = per_arch.join(margins.pivot(index="arch", columns="target", values="margin").add_prefix("margin_"))
        per_arch["estimated_speedup"] = margins.drop_duplicates("arch").set_index("arch")["estimated_speedup"]
    per_arch.loc[archs].to_csv(out / ARCHS_CSV, index_label="arch")
    pd.set_option("display.width", 200)
    print(per_arch.loc[archs].round(3).to_markdown())
    print_agreement(agreement)


if __name__ == "__main__":
    main()
