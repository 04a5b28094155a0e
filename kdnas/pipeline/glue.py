"""The GLUE gather stage: the search task and every fanned-out task in one table, the GLUE score, the
student's share of the teachers, the student in each form it ships as (export's ONNX scores), and the report."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from kdnas.data.tasks import task_of
from kdnas.evaluation.deployed import deployed_table
from kdnas.evaluation.front import glue_comparison, margin_line
from kdnas.evaluation.glue_table import glue_table
from kdnas.evaluation.report import glue_plot, markdown_report, pareto_plot
from kdnas.io import atomic_path, read_json, write_json, write_text
from kdnas.latency.table import LatencyTable
from kdnas.task_params import glue_tasks, task_runs


def gather_results(params: dict, search_metrics: str, glue_dir: str) -> dict:
    """task -> its evaluate metrics, the search task first."""
    results = {params["task"]: read_json(search_metrics)}
    for task in glue_tasks(params):
        results[task] = read_json(Path(glue_dir) / task / "evaluate.json")
    return results


def glue_stage(paths, params: dict) -> str:
    results = gather_results(params, paths.search_metrics, paths.glue_metrics)
    tasks = {name: task_of(run) for name, run in task_runs(params).items()}
    table = glue_table({task: {"teacher": r["teacher"], "student": r["student"]} for task, r in results.items()}, tasks)
    arch = read_json(paths.summary)["winner"]["arch"]
    latency = LatencyTable.read(paths.latency)
    speedup = latency.speedups(arch)
    search = results[params["task"]]
    hand_crafted = {"tasks": {task: (r.get("hand_crafted") or {}).get("margins", {}) for task, r in results.items()},
                    "glue": glue_comparison(results, tasks, latency, arch)}
    deployed = deployed_table(table, read_json(paths.export_metrics), tasks, latency, arch)
    write_json(paths.metrics, {"arch": arch, "search_task": params["task"], **table, "speedup": speedup,
                              "teacher_params": search["teacher"]["params"], "student_params": search["student"]["params"],
                              "hand_crafted": hand_crafted, "deployed": deployed})
    rows = [{"task": task, "model": model, "score": row[model]} for task, row in table["tasks"].items()
            for model in ("teacher", "student")]
    with atomic_path(paths.plot) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    trials = pd.read_csv(paths.trials)
    with atomic_path(paths.report) as tmp:
        tmp.mkdir()
        pareto_plot(trials, arch, Path(tmp) / "pareto.png", search["main_metric"])
        glue_plot(table, Path(tmp) / "glue.png")
        write_text(Path(tmp) / "README.md", markdown_report(table, results, params["task"], arch, latency, trials,
                                                            params, tasks, hand_crafted, deployed))
    return (f"wrote {paths.metrics} and {paths.report}: GLUE score student {100 * table['student']:.1f} vs teachers "
            f"{100 * table['teacher']:.1f} ({table['percent_of_teacher']:.1f}%) on {', '.join(table['tasks'])}"
            f"{margin_line(hand_crafted['glue']['margins'])}")
