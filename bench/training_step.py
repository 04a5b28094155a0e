"""What does a training step cost: fused AdamW, and the checkpoint interval? (#13: the default run from scratch)

Trains, with the pipeline's own loop (:func:`kdnas.distillation.training.train_model`), the two kinds of model
the default run trains on the CPU, in four variants interleaved over ``--rounds`` so that all see the machine's
load alike: AdamW's fused kernel (what the pipeline uses since 2026-12-07) and its default (unfused)
implementation, without checkpoints; fused with a training checkpoint every 50 steps (the default before
2026-12-07) and every 200 (the default since):

- ``student``: the default run's searched student (``results/student/summary.json``) distilled on the
  transfer rows with the ``distill_full`` recipe (logits cached, the loss the params name);
- ``teacher``: the MiniLM backbone fine-tuned on the same rows (label loss, ``teacher`` block's lr).

Each run is ``--steps`` optimizer steps at the recipe's batch size, from the same initial weights and batch
order. Writes ``bench/out/training_step.csv`` (one row per model, variant and round: milliseconds per
step) and ``training_step_summary.csv`` (per model and variant: mean and standard deviation over rounds, the
time relative to fused without checkpoints, and how far the weights end from that run's: fused and unfused
are the same update up to float rounding). Run after `dvc repro`, with nothing else on the cores:
    .venv/bin/python bench/training_step.py --rounds 3 --steps 200   # what wrote the committed CSVs
"""
from __future__ import annotations

import argparse
import copy
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from kdnas.data.batching import Encoded
from kdnas.data.logit_tables import load_encoded
from kdnas.data.tasks import task_of
from kdnas.device import CPU, Compute
from kdnas.distillation.checkpoint import Checkpoint
from kdnas.distillation.losses import build_loss
from kdnas.distillation.students import build_student
from kdnas.distillation.training import train_model
from kdnas.io import read_json
from kdnas.models.arch import Arch
from kdnas.models.loading import load_model_and_tokenizer
from kdnas.params import load_params
from kdnas.threads import torch_threads

OUT = Path("bench/out")


@dataclass(frozen=True)
class Unfused(Compute):
    """The CPU in fp32, with AdamW's default implementation (the pipeline before fused AdamW)."""

    @property
    def fused_optimizer(self) -> bool:
        return False


# variant -> (compute, checkpoint interval in steps; 0 = none)
VARIANTS = {"fused": (CPU, 0), "unfused": (Unfused(CPU.device, CPU.precision), 0),
            "fused, checkpoint every 50": (CPU, 50), "fused, checkpoint every 200": (CPU, 200)}


def first_rows(data: Encoded, rows: int) -> Encoded:
    return Encoded(data.input_ids[:rows], data.token_type_ids[:rows], data.labels[:rows], data.pad_id,
                   data.teacher_logits[:rows])


def models(params: dict, teacher, tokenizer):
    """name -> (a function building the model afresh, its loss, its training block)."""
    task = task_of(params)
    arch = Arch.from_key(read_json("results/student/summary.json")["winner"]["arch"])
    full = params["distill_full"]
    student_loss = build_loss(full["losses"], temperature=full["temperature"], regression=task.is_regression)
    teacher_loss = build_loss([{"name": "label", "weight": 1.0}], temperature=1.0, regression=task.is_regression)
    return {
        f"student {arch.key}": (lambda: build_student(teacher, arch, init=params["space"]["init"], seed=params["seed"],
                                                      importance=None), student_loss, full),
        "teacher": (lambda: copy.deepcopy(teacher), teacher_loss, params["teacher"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    params = load_params("params.yaml")
    teacher, tokenizer = load_model_and_tokenizer("results/teacher/model", attn_implementation="sdpa")
    built = models(params, teacher, tokenizer)
    transfer = load_encoded("results/transfer/logits.parquet", tokenizer, params["data"]["max_length"])
    rows, weights = [], {}
    with torch_threads(params["latency"]["threads"]):
        for round_ in range(args.rounds):
            for name, (build, loss, cfg) in built.items():
                data = first_rows(transfer, args.steps * cfg["batch_size"])
                for variant, (compute, every) in VARIANTS.items():
                    model = build()
                    with tempfile.TemporaryDirectory(dir=OUT.parent) as folder:
                        checkpoint = Checkpoint(Path(folder), every) if every else None
                        history = train_model(model, data, loss, epochs=1, lr=cfg["lr"], batch_size=cfg["batch_size"],
                                              seed=params["seed"], weight_decay=cfg.get("weight_decay", 0.01),
                                              warmup_ratio=cfg.get("warmup_ratio", 0.0), show_progress=False,
                                              checkpoint=checkpoint, compute=compute)
                    ms = 1000 * history["seconds"] / history["steps"]
                    rows.append({"model": name, "variant": variant, "round": round_, "ms_per_step": round(ms, 2)})
                    print(rows[-1], flush=True)
                    if round_ == 0:
                        weights[name, variant] = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    table = pd.DataFrame(rows)
    table.to_csv(OUT / "training_step.csv", index=False)
    summary = table.groupby(["model", "variant"], sort=False)["ms_per_step"].agg(["mean", "std"]).round(2).reset_index()
    fused = {m: summary[(summary.model == m) & (summary.variant == "fused")]["mean"].item() for m in summary.model}
    summary["time_vs_fused"] = [round(mean / fused[m], 3) for m, mean in zip(summary.model, summary["mean"])]
    summary["max_weight_difference_vs_fused"] = [float((weights[m, v] - weights[m, "fused"]).abs().max())
                                                 for m, v in zip(summary.model, summary.variant)]
    summary.to_csv(OUT / "training_step_summary.csv", index=False)
    print(summary.to_markdown(index=False))


if __name__ == "__main__":
    main()
