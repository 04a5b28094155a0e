"""Benchmark of the search strategies on a tabular copy of the real search space (NAS-Bench style).

Every valid architecture of the space in params.yaml is distilled once on the real SST-2 proxy set with the
search's own budget and timed with the search's latency settings (cached in bench/out/space_table.csv).
Each strategy then runs against that table, so strategies are compared on identical, real rewards and
many seeds cost seconds. Reported per strategy (mean over seeds): final best reward, candidates needed to
reach random search's mean final best reward, final hypervolume, and the wall time the search would have
taken (the table's measured seconds for the candidates it proposed, plus the strategy's own overhead).

Run after `dvc repro` (it reads results/teacher and results/proxy):
    .venv/bin/python bench/search_strategies.py --budget 48 --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from kdnas.search.pareto import hypervolume
from kdnas.search.reward import objective
from kdnas.search.space import SearchSpace
from kdnas.search.strategies import build_strategy

STRATEGIES = ["random", "evolution", "trbo", "kdnas"]


def build_table(params: dict, results: Path, path: Path) -> pd.DataFrame:
    """Distils and times every architecture once (resumable: rows already in the CSV are kept)."""
    from kdnas.data.logit_tables import load_encoded
    from kdnas.data.tasks import task_of
    from kdnas.models.loading import load_model_and_tokenizer
    from kdnas.search.candidates import distill_candidate
    from kdnas.search.runner import _latency

    task = task_of(params)
    teacher, tokenizer = load_model_and_tokenizer(results / "teacher/model")
    max_len = params["data"]["max_length"]
    train = load_encoded(results / "proxy/train.parquet", tokenizer, max_len)
    dev = load_encoded(results / "proxy/dev.parquet", tokenizer, max_len)
    head = teacher.config.hidden_size // teacher.config.num_attention_heads
    space = SearchSpace.from_params(params["space"], max_head_size=head)
    lat = {**params["search"]["latency"], "seq_len": params["latency"]["seq_len"], "threads": params["latency"]["threads"]}
    rows = pd.read_csv(path).to_dict("records") if path.exists() else []
    done = {r["arch"] for r in rows}
    teacher_ms = _latency(teacher, lat)
    for i, arch in enumerate(space.archs):
        if arch.key in done:
            continue
        start = time.perf_counter()
        student, result = distill_candidate(teacher, arch, task, train, dev, params["search"],
                                            params["space"]["init"], params["seed"])
        rows.append({"arch": arch.key, "score": result["score"], "params": result["params"],
                     "latency_ms": _latency(student, lat), "teacher_latency_ms": teacher_ms,
                     "seconds": time.perf_counter() - start})
        print(f"[{i + 1}/{len(space)}] {rows[-1]}", flush=True)
        pd.DataFrame(rows).to_csv(path, index=False)
    return pd.DataFrame(rows)


def run_strategy(name: str, seed: int, table: pd.DataFrame, space: SearchSpace, params: dict, budget: int,
                 kwargs: dict) -> pd.DataFrame:
    lookup = table.set_index("arch")
    rw = params["search"]["reward"]
    teacher_ms = float(table["teacher_latency_ms"].median())
    strategy = build_strategy(name, space, seed=seed, **kwargs)
    rows, overhead = [], 0.0
    for step in range(1, budget + 1):
        start = time.perf_counter()
        arch = strategy.ask(1)[0]
        row = lookup.loc[arch.key]
        value = objective(row["score"], row["latency_ms"], teacher_ms, rw)
        strategy.tell(arch, value)
        overhead += time.perf_counter() - start
        rows.append({"strategy": name, "seed": seed, "step": step, "arch": arch.key, "reward": value,
                     "score": row["score"], "latency_rel": row["latency_ms"] / teacher_ms,
                     "eval_seconds": row["seconds"], "overhead_seconds": overhead})
    out = pd.DataFrame(rows)
    out["best_reward"] = out["reward"].cummax()
    out["hypervolume"] = [hypervolume(list(zip(out["score"][:i].clip(lower=0), out["latency_rel"][:i])), (0.0, 1.0))
                          for i in range(1, len(out) + 1)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--results", default="results")
    parser.add_argument("--budget", type=int, default=48)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="bench/out")
    args = parser.parse_args()
    params = yaml.safe_load(open(args.params))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = build_table(params, Path(args.results), out / "space_table.csv")
    teacher = json.loads((Path(args.results) / "teacher/model/config.json").read_text())
    space = SearchSpace.from_params(params["space"], max_head_size=teacher["hidden_size"] // teacher["num_attention_heads"])
    if {a.key for a in space.archs} != set(table.arch):
        raise SystemExit("bench/out/space_table.csv was built for another space: delete it to rebuild")
    best_possible = max(objective(r.score, r.latency_ms, r.teacher_latency_ms, params["search"]["reward"])
                        for r in table.itertuples())
    kwargs = {s: {} for s in STRATEGIES}
    kwargs["kdnas"] = params["search"].get("strategy_kwargs", {}) if params["search"]["strategy"] == "kdnas" else {}
    runs = pd.concat([run_strategy(s, seed, table, space, params, args.budget, kwargs[s])
                      for s in STRATEGIES for seed in args.seeds])
    runs.to_csv(out / "search_runs.csv", index=False)
    final = runs[runs.step == args.budget]
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
                        "std": last.best_reward.std(ddof=0), "share_of_best_in_space": last.best_reward.mean() / best_possible,
                        "candidates_to_reach_random_final": np.nanmean(reach) if not np.all(np.isnan(reach)) else np.nan,
                        "seeds_reaching_it": int(np.sum(~np.isnan(reach))),
                        "final_hypervolume": last.hypervolume.mean(),
                        "search_wall_seconds": (mine.groupby("seed").eval_seconds.sum().mean()
                                                + last.overhead_seconds.mean())})
    summary = pd.DataFrame(summary)
    summary.to_csv(out / "search_summary.csv", index=False)
    print(f"space: {len(table)} architectures; budget {args.budget}; seeds {args.seeds}; best reward in space {best_possible:.4f}")
    print(summary.to_markdown(index=False, floatfmt=".4f"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in STRATEGIES:
        curve = runs[runs.strategy == name].groupby("step").best_reward.mean()
        ax.plot(curve.index, curve.values, label=name)
    ax.axhline(best_possible, ls=":", c="gray", label="best in space")
    ax.set_xlabel("candidates evaluated")
    ax.set_ylabel(f"best reward (mean of {len(args.seeds)} seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "search_anytime.png", dpi=110)


if __name__ == "__main__":
    main()
