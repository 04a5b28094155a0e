"""The markdown report and its plots (Pareto front, GLUE teacher vs student), written by the glue stage."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from kdnas.data.tasks import Task
from kdnas.evaluation.glue_table import official_metrics
from kdnas.latency.table import LatencyTable

NO_TEST = ("GLUE's test labels are hidden (the local GLUE folder has no labelled test split), so every "
           "figure is on dev.")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pareto_plot(trials: pd.DataFrame, chosen: str, path: Path, metric: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    front = trials["pareto"].astype(bool)
    ax.scatter(trials["latency_ms"], trials["score"], c="tab:gray", label="trials")
    ax.scatter(trials.loc[front, "latency_ms"], trials.loc[front, "score"], c="tab:blue", label="Pareto front")
    pick = trials[trials["arch"] == chosen]
    if len(pick):
        ax.scatter(pick["latency_ms"], pick["score"], marker="*", s=250, c="tab:red", label=f"chosen {chosen}")
    ax.set_xlabel("latency (ms, search batch size)")
    multi_task = any(c.startswith("relative_") for c in trials.columns)  # search.tasks: all
    ax.set_ylabel("proxy-dev score / teacher's, mean over tasks" if multi_task else f"proxy-dev {metric}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def glue_plot(table: dict, path: Path) -> None:
    """Teacher and student GLUE task scores side by side."""
    plt = _pyplot()
    tasks = list(table["tasks"])
    fig, ax = plt.subplots(figsize=(1.2 * len(tasks) + 2.5, 3.5))
    xs = range(len(tasks))
    for shift, model, colour in ((-0.2, "teacher", "tab:gray"), (0.2, "student", "tab:red")):
        ax.bar([x + shift for x in xs], [100 * table["tasks"][t][model] for t in tasks], width=0.4,
               label=model, color=colour)
    ax.set_xticks(list(xs), tasks)
    ax.set_ylabel("GLUE task score (dev, x100)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _share(value: float) -> str:
    return "n/a" if value != value else f"{value:.1f}%"  # NaN: the teacher scored 0


def _speedups(latency: LatencyTable, arch: str) -> str:
    rows = latency.frame[latency.frame["model"] == arch]
    return ", ".join(f"{r.speedup:.1f}x ({r.backend}, batch {r.batch_size})" for r in rows.itertuples())


def glue_section(table: dict, results: dict, search_task: str, as_given: list[str] = (),
                 tasks: dict[str, Task] | None = None) -> list[str]:
    tasks = tasks or {}
    given = (f"Teachers used as given (teacher.finetune: false, not trained here): {', '.join(as_given)}. "
             if as_given else "")
    custom = [name for name, task in tasks.items() if not task.is_glue]
    if custom:
        given += (f"Your own tasks ({', '.join(custom)}, from custom_tasks) count with their main metric, so the "
                  "GLUE score below is the mean over this run's tasks, not GLUE's. ")
    lines = ["## GLUE (dev): teacher vs student", "",
             "Task score = mean of GLUE's official metrics for the task; GLUE score = mean over tasks. "
             f"Each task has its own fine-tuned teacher; the student architecture was searched on {search_task}. "
             + given + NO_TEST, "",
             "| task | metrics | dev rows | teacher | student | % of teacher |", "|---|---|---|---|---|---|"]
    for task, row in table["tasks"].items():
        t, s = results[task]["teacher"], results[task]["student"]
        names = official_metrics(tasks.get(task, task))
        shown = lambda m: "/".join(f"{100 * m[n]:.1f}" for n in names)  # noqa: E731
        lines.append(f"| {task}{' (searched)' if task == search_task else ''} | {'/'.join(names)} | "
                     f"{results[task].get('dev_examples', '')} | {shown(t)} | {shown(s)} | {_share(row['percent_of_teacher'])} |")
    lines += [f"| **GLUE score** | | | **{100 * table['teacher']:.1f}** | **{100 * table['student']:.1f}** | "
              f"**{table['percent_of_teacher']:.1f}%** |",
              f"| GLUE score without CoLA | | | {100 * table['teacher_without_cola']:.1f} | "
              f"{100 * table['student_without_cola']:.1f} | {table['percent_of_teacher_without_cola']:.1f}% |",
              f"| mean of per-task shares | | | | | {_share(table['mean_percent_of_teacher'])} |", "",
              "![GLUE](glue.png)", ""]
    return lines


def _margin(m: dict | None) -> str:
    if not m:
        return "n/a"
    flag = "" if m["position"] == "inside" else f" ({m['position']} than all)"
    return f"{100 * m['margin']:+.1f} +/- {100 * m['se']:.1f}{flag}"


def hand_crafted_section(comparison: dict, results: dict, latency: LatencyTable, arch: str) -> list[str]:
    """The searched student's margin over the hand-crafted front, per task and on the GLUE score."""
    glue = comparison["glue"]
    if not glue["scores"]:
        return ["## Against hand-crafted students", "", "No hand-crafted students (baselines.keep_every is empty).", ""]
    sizes = list(glue["margins"])
    lines = ["## Against hand-crafted students at equal latency", "",
             "The teacher's layers dropped uniformly at full width, and the same depths with the FFN trimmed "
             "(`baselines`), each distilled with the searched student's recipe, seed and transfer rows and timed in "
             "its latency run (eager PyTorch). Margin = the searched student's score minus the hand-crafted front's "
             "score at its latency (linear between the two front members around it), in points, +/- a paired "
             "bootstrap standard error over dev rows.", "",
             "| task | searched student | " + " | ".join(f"front at its latency ({s}) | margin ({s})" for s in sizes)
             + " |", "|---|---|" + "---|---|" * len(sizes)]
    rows = [(task, comparison["tasks"][task]) for task in results] + [("**GLUE score**", glue["margins"])]
    for task, margins in rows:
        student = next(iter(margins.values()))["student_score"] if margins else float("nan")
        lines.append(f"| {task} | {100 * student:.1f} | " + " | ".join(
            f"{100 * margins[s]['front_score']:.1f} | {_margin(margins[s])}" if s in margins else "n/a | n/a"
            for s in sizes) + " |")
    eager = latency.frame[latency.frame["backend"] == "eager"]
    speedup = lambda model: ", ".join(f"{r.speedup:.2f}x (batch {r.batch_size})"  # noqa: E731
                                      for r in eager[eager["model"] == model].itertuples())
    lines += ["", "| student | speed-up (eager) | " + " | ".join(results) + " | GLUE score |",
              "|---|---|" + "---|" * (len(results) + 1)]
    lines.append(f"| searched {arch} | {speedup(arch)} | " + " | ".join(
        f"{100 * next(iter(comparison['tasks'][t].values()))['student_score']:.1f}" if comparison["tasks"][t] else "n/a"
        for t in results) + f" | {100 * next(iter(glue['margins'].values()))['student_score']:.1f} |")
    for base, score in glue["scores"].items():
        lines.append(f"| {base} | {speedup(base)} | " + " | ".join(
            f"{100 * results[t]['hand_crafted']['scores'][base]:.1f}" for t in results) + f" | {100 * score:.1f} |")
    return lines + [""]


def teachers_used_as_given(params: dict) -> list[str]:
    """The tasks whose teacher was taken as given (``teacher.finetune: false``), the search task first."""
    from kdnas.task_params import task_runs

    return [task for task, run in task_runs(params).items() if not run["teacher"].get("finetune", True)]


def deployed_section(rows: list[dict]) -> list[str]:
    """The student as it ships: each runtime's dev GLUE score and speed-up over the eager fp32 teacher."""
    lines = ["## Deployed forms", "",
             "The student in each form it ships as, scored on dev through that runtime (export scores both ONNX "
             "forms on the same dev rows) and timed by the latency stage.", "",
             "| runtime | dev GLUE score (% of teachers) | batch | student median ms | speed-up over the eager fp32 "
             "teacher |", "|---|---|---|---|---|"]
    for row in rows:
        score = ("not scored" if row["glue_score"] is None
                 else f"{100 * row['glue_score']:.1f} ({row['percent_of_teacher']:.1f}%)")
        lines.append(f"| {row['runtime']} | {score} | {row['batch_size']} | {row['student_ms']:.2f} | "
                     f"{row['speedup_vs_eager_teacher']:.2f}x |")
    return lines + [""]


def markdown_report(table: dict, results: dict, search_task: str, arch: str, latency: LatencyTable,
                    trials: pd.DataFrame, params: dict, tasks: dict[str, Task] | None = None,
                    hand_crafted: dict | None = None, deployed: list[dict] | None = None) -> str:
    import yaml

    t, s = results[search_task]["teacher"], results[search_task]["student"]
    lines = [f"# kdnas report: {arch} searched on {search_task}, on {len(table['tasks'])} GLUE tasks", "",
             f"Chosen student **{arch}** ({s['params'] / 1e6:.1f}M params vs the teacher's {t['params'] / 1e6:.1f}M) "
             f"keeps **{table['percent_of_teacher']:.1f}%** of the teachers' GLUE score "
             f"({100 * table['student']:.1f} vs {100 * table['teacher']:.1f}) at measured speed-ups of "
             f"{_speedups(latency, arch)}.", ""]
    lines += glue_section(table, results, search_task, teachers_used_as_given(params), tasks)
    if hand_crafted is not None:
        lines += hand_crafted_section(hand_crafted, results, latency, arch)
    if deployed:
        lines += deployed_section(deployed)
    lines += ["### Every metric", "", "| task | model | metric | value |", "|---|---|---|---|"]
    for task in table["tasks"]:
        for model in ("teacher", "student"):
            for name, value in results[task][model].items():
                shown = f"{value:,}" if name == "params" else f"{value:.4f}"
                lines.append(f"| {task} | {model} | {name} | {shown} |")
    lines += ["", "## Latency (median of repeated runs, interleaved; each ONNX Runtime backend in a process of its own)", "",
              "| backend | model | batch | seq len | median ms | IQR ms | runs | speed-up | vs eager fp32 teacher |",
              "|---|---|---|---|---|---|---|---|---|"]
    for row in latency.frame.itertuples():
        vs_eager = getattr(row, "speedup_vs_eager", float("nan"))
        lines.append(f"| {row.backend} | {row.model} | {row.batch_size} | {row.seq_len} | {row.median_ms:.2f} | "
                     f"{row.iqr_ms:.2f} | {row.runs} | {row.speedup:.2f}x | {vs_eager:.2f}x |")
    hw = latency.hardware()
    lines += ["", "Hardware: " + ", ".join(f"{k} {v}" for k, v in hw.items()), "",
              "## Search", ""]
    scored = [c.removeprefix("relative_") for c in trials.columns if c.startswith("relative_")]
    if scored:  # search.tasks: all
        lines += [f"{len(trials)} trials, each scored on {', '.join(scored)}: score = the mean over tasks of its "
                  "proxy-dev score relative to that task's teacher. Pareto front in blue, chosen student starred.", ""]
    else:
        lines += [f"{len(trials)} trials on {search_task}; Pareto front in blue, chosen student starred.", ""]
    lines += ["![Pareto](pareto.png)", "",
              "| arch | score | " + "".join(f"{task} | " for task in scored) + "latency ms | speed-up | reward |",
              "|---|---|" + "---|" * len(scored) + "---|---|---|"]
    for row in trials.sort_values("reward", ascending=False).to_dict("records"):
        per_task = "".join(f"{row[f'score_{task}']:.4f} | " for task in scored)
        lines.append(f"| {row['arch']} | {row['score']:.4f} | {per_task}{row['latency_ms']:.2f} | "
                     f"{row['speedup']:.2f}x | {row['reward']:.4f} |")
    lines += ["", "## Params that produced this", "", "```yaml", yaml.safe_dump(params, sort_keys=False).strip(), "```", ""]
    return "\n".join(lines)
