"""What the default run's training steps cost with the embedding rows the data never looks up left out of the
update, and with two trainings side by side instead of one on both cores. (#13: the default run from scratch)

Trains, with the pipeline's own loop (:func:`kdnas.distillation.training.train_model`), the default run's searched
student (distilled on the transfer rows with the ``distill_full`` recipe) and the teacher's fine-tuning, ``--steps``
steps from the same weights and batch order, in these variants, interleaved over ``--rounds``:

- ``whole table``: every word-embedding row trainable (the pipeline before 2026-12-07's second change);
- ``seen rows``: only the rows of tokens the training rows contain (:mod:`kdnas.distillation.seen_vocabulary`);
- ``seen rows, 1 thread`` and ``seen rows, 1 thread, 2 side by side``: one torch thread, alone, and two such
  trainings at once in two processes (``search.workers`` / ``baselines.workers``: 2), student only.

Writes ``bench/out/side_by_side.csv`` (one row per model, variant, round and process: milliseconds per step) and
``side_by_side_summary.csv`` (per model and variant: mean and standard deviation over rounds; ``steps_per_second``
counts every process, so the side-by-side row's is the two trainings' throughput together). Run after `dvc repro`,
with nothing else on the cores:
    .venv/bin/python bench/side_by_side.py --rounds 3 --steps 150
"""
from __future__ import annotations

import argparse
import multiprocessing
from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import torch

OUT = Path("bench/out")


def _steps(model: str, variant: str, steps: int) -> float:
    """Milliseconds per training step of ``model`` in ``variant`` (threads set by the caller)."""
    from training_step import (  # bench/ is on the path of this script and its workers
        first_rows,
        models,
    )

    import kdnas.distillation.training as training
    from kdnas.data.logit_tables import load_encoded
    from kdnas.models.loading import load_model_and_tokenizer
    from kdnas.params import load_params

    params = load_params("params.yaml")
    teacher, tokenizer = load_model_and_tokenizer("results/teacher/model", attn_implementation="sdpa")
    name = next(n for n in models(params, teacher, tokenizer) if n.startswith(model))
    build, loss, cfg = models(params, teacher, tokenizer)[name]
    data = first_rows(load_encoded("results/transfer/logits.parquet", tokenizer, params["data"]["max_length"]),
                      steps * cfg["batch_size"])
    if variant == "whole table":
        training.seen_rows_only = lambda model, data: nullcontext()
    history = training.train_model(build(), data, loss, epochs=1, lr=cfg["lr"], batch_size=cfg["batch_size"],
                                   seed=params["seed"], weight_decay=cfg.get("weight_decay", 0.01),
                                   warmup_ratio=cfg.get("warmup_ratio", 0.0), show_progress=False)
    return 1000 * history["seconds"] / history["steps"]


def _in_process(job: tuple[str, str, int, int]) -> float:
    model, variant, steps, threads = job
    torch.set_num_threads(threads)
    return _steps(model, variant, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")  # a fresh process per run: no state carried between variants
    runs = [("student", "whole table", 2, 1), ("student", "seen rows", 2, 1), ("teacher", "whole table", 2, 1),
            ("teacher", "seen rows", 2, 1), ("student", "seen rows, 1 thread", 1, 1),
            ("student", "seen rows, 1 thread, 2 side by side", 1, 2)]
    rows = []
    for round_ in range(args.rounds):
        for model, variant, threads, processes in runs:
            base = "whole table" if variant == "whole table" else "seen rows"
            with context.Pool(processes) as pool:
                times = pool.map(_in_process, [(model, base, args.steps, threads)] * processes)
            for process, ms in enumerate(times):
                rows.append({"model": model, "variant": variant, "round": round_, "process": process,
                             "ms_per_step": round(ms, 2)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(OUT / "side_by_side.csv", index=False)
    per_round = table.groupby(["model", "variant", "round"], sort=False).agg(
        ms_per_step=("ms_per_step", "mean"), steps_per_second=("ms_per_step", lambda ms: sum(1000 / ms)))
    summary = per_round.groupby(["model", "variant"], sort=False).agg(["mean", "std"]).round(2)
    summary.columns = [f"{a}_{b}" for a, b in summary.columns]
    summary.reset_index().to_csv(OUT / "side_by_side_summary.csv", index=False)
    print(summary.to_markdown())


if __name__ == "__main__":
    main()
