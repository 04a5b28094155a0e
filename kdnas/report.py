"""The markdown report and its Pareto plot, written by the evaluate stage."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def pareto_plot(trials: pd.DataFrame, chosen: str, path: Path, metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    front = trials["pareto"].astype(bool)
    ax.scatter(trials["latency_ms"], trials["score"], c="tab:gray", label="trials")
    ax.scatter(trials.loc[front, "latency_ms"], trials.loc[front, "score"], c="tab:blue", label="Pareto front")
    pick = trials[trials["arch"] == chosen]
    if len(pick):
        ax.scatter(pick["latency_ms"], pick["score"], marker="*", s=250, c="tab:red", label=f"chosen {chosen}")
    ax.set_xlabel("latency (ms, search batch size)")
    ax.set_ylabel(f"proxy-dev {metric}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown_report(metrics: dict, latency: pd.DataFrame, trials: pd.DataFrame, params: dict) -> str:
    import yaml

    t, s = metrics["teacher"], metrics["student"]
    lines = [f"# kdnas report: {metrics['task']}", "",
             f"Chosen student **{metrics['arch']}** ({s['params'] / 1e6:.1f}M params vs the teacher's "
             f"{t['params'] / 1e6:.1f}M) keeps **{metrics['percent_of_teacher']:.1f}%** of the teacher's "
             f"{metrics['main_metric']}.", "",
             "| model | " + " | ".join(m for m in t if m != "params") + " | params |",
             "|---|" + "---|" * (len(t)) ]
    for name, row in (("teacher", t), ("student", s)):
        lines.append(f"| {name} | " + " | ".join(f"{row[m]:.4f}" for m in row if m != "params") +
                     f" | {row['params']:,} |")
    lines += ["", "## Latency (median of repeated runs, interleaved)", "",
              "| backend | model | batch | seq len | median ms | IQR ms | runs | speed-up |",
              "|---|---|---|---|---|---|---|---|"]
    for row in latency.itertuples():
        lines.append(f"| {row.backend} | {row.model} | {row.batch_size} | {row.seq_len} | {row.median_ms:.2f} | "
                     f"{row.iqr_ms:.2f} | {row.runs} | {row.speedup:.2f}x |")
    hw = {c[3:]: latency[c].iloc[0] for c in latency.columns if c.startswith("hw_")}
    lines += ["", "Hardware: " + ", ".join(f"{k} {v}" for k, v in hw.items()), "",
              "## Search", "", f"{len(trials)} trials; Pareto front in blue, chosen student starred.", "",
              "![Pareto](pareto.png)", "",
              "| arch | score | latency ms | speed-up | reward |", "|---|---|---|---|---|"]
    for row in trials.sort_values("reward", ascending=False).itertuples():
        lines.append(f"| {row.arch} | {row.score:.4f} | {row.latency_ms:.2f} | {row.speedup:.2f}x | {row.reward:.4f} |")
    lines += ["", "## Params that produced this", "", "```yaml", yaml.safe_dump(params, sort_keys=False).strip(), "```", ""]
    return "\n".join(lines)
