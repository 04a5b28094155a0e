"""Benchmark of the search strategies on a tabular copy of the real search space (NAS-Bench style).

Every valid architecture of the space in params.yaml is distilled once on the real SST-2 proxy set with the
search's own budget (cached in bench/out/space_table.csv, with each one's distillation seconds). Each
strategy then runs through the search stage's own loop (:func:`kdnas.search.runner.run_search`: the
prescreen band, rounds of ``search.proposals_per_round``, the reward, the trial log), with the table standing
in for distillation and latency from the pipeline's latency profile (results/latency_profile/predictor.json),
so strategies are compared on identical, real scores in the space the search explores, and many seeds cost
seconds. Single-task: the table holds SST-2 proxy scores. Reported per strategy (mean over seeds): final best
reward, candidates needed to reach random search's mean final best reward, final hypervolume, and the wall
time the search would have taken (the table's seconds for the candidates it proposed, plus the loop's own).

Run after `dvc repro` (it reads results/teacher, results/proxies/<task> and results/latency_profile):
    .venv/bin/python bench/search_strategies.py --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from kdnas.data.tasks import task_of
from kdnas.io import read_json
from kdnas.models.loading import load_model_and_tokenizer
from kdnas.pipeline.manifest import MANIFEST
from kdnas.search.pareto import hypervolume
from kdnas.search.runner import run_search, search_fingerprint
from kdnas.search.space import SearchSpace

STRATEGIES = ["random", "evolution", "trbo", "kdnas"]


def build_table(params: dict, results: Path, path: Path) -> pd.DataFrame:
    """Distils every architecture once (resumable: rows already in the CSV are kept)."""
    from kdnas.data.logit_tables import load_encoded
    from kdnas.latency.measure import measure_interleaved
    from kdnas.search.candidates import distill_candidate

    task = task_of(params)
    teacher, tokenizer = load_model_and_tokenizer(results / "teacher/model")
    max_len = params["data"]["max_length"]
    proxy = results / "proxies" / task.name
    train = load_encoded(proxy / "train.parquet", tokenizer, max_len)
    dev = load_encoded(proxy / "dev.parquet", tokenizer, max_len)
    head = teacher.config.hidden_size // teacher.config.num_attention_heads
    space = SearchSpace.from_params(params["space"], max_head_size=head)
    lat = {"batch_size": params["search"]["latency"]["batch_size"], "seq_len": params["latency"]["seq_len"],
           "threads": params["latency"]["threads"], "warmup": params["search"]["latency"]["warmup"],
           "repeats": params["search"]["latency"]["repeats"]}

    def latency_ms(model) -> float:
        return measure_interleaved({"m": model}, **lat)["m"]["median_ms"]

    rows = pd.read_csv(path).to_dict("records") if path.exists() else []
    done = {r["arch"] for r in rows}
    teacher_ms = latency_ms(teacher)
    for i, arch in enumerate(space.archs):
        if arch.key in done:
            continue
        start = time.perf_counter()
        student, result = distill_candidate(teacher, arch, task, train, dev, params["search"],
                                            params["space"]["init"], params["seed"])
        rows.append({"arch": arch.key, "score": result["score"], "params": result["params"],
                     "latency_ms": latency_ms(student), "teacher_latency_ms": teacher_ms,
                     "seconds": time.perf_counter() - start})
        print(f"[{i + 1}/{len(space)}] {rows[-1]}", flush=True)
        pd.DataFrame(rows).to_csv(path, index=False)
    return pd.DataFrame(rows)


class TableEvaluator:
    """The search's evaluator (a round of architectures in, their results out) over the space table: each
    candidate's proxy score as distilled once, and the seconds that took."""

    def __init__(self, table: pd.DataFrame):
        self.rows = table.set_index("arch")

    def __call__(self, archs) -> list[dict]:
        return [{"score": float(self.rows.loc[a.key, "score"]), "params": int(self.rows.loc[a.key, "params"]),
                 "seconds": float(self.rows.loc[a.key, "seconds"])} for a in archs]


def run_strategy(name: str, seed: int, table: pd.DataFrame, teacher, predictor: dict, params: dict, budget: int,
                 kwargs: dict) -> pd.DataFrame:
    """One search with strategy ``name`` through the search stage's loop, the table distilling."""
    run = copy.deepcopy(params)
    run["seed"] = seed
    run["search"].update(strategy=name, strategy_kwargs=kwargs, candidates=budget, tasks="search", max_seconds=None)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        trials, state = run_search(run, teacher, task_of(run), Path(tmp) / "trials.jsonl", TableEvaluator(table),
                                   predictor, resume_key=search_fingerprint(run, MANIFEST["search"].params, []))
        overhead = time.perf_counter() - start
    out = pd.DataFrame(trials)
    out = pd.DataFrame({"strategy": name, "seed": seed, "step": np.arange(1, len(out) + 1), "arch": out["arch"],
                        "reward": out["reward"], "score": out["score"],
                        "latency_rel": out["latency_ms"] / state["teacher_latency_ms"], "eval_seconds": out["seconds"],
                        "overhead_seconds": overhead, "band_size": state["prescreened_size"]})
    out["best_reward"] = out["reward"].cummax()
    out["hypervolume"] = [hypervolume(list(zip(out["score"][:i].clip(lower=0), out["latency_rel"][:i])), (0.0, 1.0))
                          for i in range(1, len(out) + 1)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--results", default="results")
    parser.add_argument("--budget", type=int, help="candidates per search (default: search.candidates)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="bench/out")
    args = parser.parse_args()
    params = yaml.safe_load(open(args.params))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = Path(args.results)
    table = build_table(params, results, out / "space_table.csv")
    teacher, _ = load_model_and_tokenizer(results / "teacher/model")
    space = SearchSpace.from_params(params["space"], max_head_size=teacher.config.hidden_size
                                    // teacher.config.num_attention_heads)
    if {a.key for a in space.archs} != set(table.arch):
        raise SystemExit("bench/out/space_table.csv was built for another space: delete it to rebuild")
    predictor = read_json(results / "latency_profile/predictor.json")
    budget = args.budget or params["search"]["candidates"]
    kwargs = {s: {} for s in STRATEGIES}
    kwargs["kdnas"] = params["search"].get("strategy_kwargs", {}) if params["search"]["strategy"] == "kdnas" else {}
    # the best reward in the band: random search with a budget of the whole band tries every member
    everything = run_strategy("random", 0, table, teacher, predictor, params, len(space), {})
    best_possible = float(everything["reward"].max())
    runs = pd.concat([run_strategy(s, seed, table, teacher, predictor, params, budget, kwargs[s])
                      for s in STRATEGIES for seed in args.seeds])
    runs.to_csv(out / "search_runs.csv", index=False)
    last_step = runs.groupby(["strategy", "seed"]).step.transform("max")
    final = runs[runs.step == last_step]
    random_best = final[final.strategy == "random"]["best_reward"].mean()

    def steps_to(group):
        hit = group[group.best_reward >= random_best - 1e-12]
        return hit.step.min() if len(hit) else np.nan

    summary = []
    for name in STRATEGIES:
        mine = runs[runs.strategy == name]
        reach = [steps_to(g) for _, g in mine.groupby("seed")]
        last = final[final.strategy == name]
        summary.append({"strategy": name, "mean_final_best_reward": last.best_reward.mean(),
                        "std": last.best_reward.std(ddof=0), "share_of_best_in_band": last.best_reward.mean() / best_possible,
                        "seeds_finding_best_in_band": int((last.best_reward >= best_possible - 1e-12).sum()),
                        "candidates_to_reach_random_final": np.nanmean(reach) if not np.all(np.isnan(reach)) else np.nan,
                        "seeds_reaching_it": int(np.sum(~np.isnan(reach))),
                        "final_hypervolume": last.hypervolume.mean(),
                        "search_wall_seconds": (mine.groupby("seed").eval_seconds.sum().mean()
                                                + last.overhead_seconds.mean())})
    summary = pd.DataFrame(summary)
    summary.to_csv(out / "search_summary.csv", index=False)
    print(f"space: {len(table)} architectures, {int(everything['band_size'].iloc[0])} in the prescreen band; "
          f"budget {budget}; seeds {args.seeds}; best reward in the band {best_possible:.4f}")
    print(summary.to_markdown(index=False, floatfmt=".4f"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in STRATEGIES:
        curve = runs[runs.strategy == name].groupby("step").best_reward.mean()
        ax.plot(curve.index, curve.values, label=name)
    ax.axhline(best_possible, ls=":", c="gray", label="best in band")
    ax.set_xlabel("candidates evaluated")
    ax.set_ylabel(f"best reward (mean of {len(args.seeds)} seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "search_anytime.png", dpi=110)


if __name__ == "__main__":
    main()
