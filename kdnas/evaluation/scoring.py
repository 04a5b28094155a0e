"""Dev metrics of a task's models on every dev split it has: GLUE's ``dev``, plus MNLI's mismatched dev set
(its metrics get the suffix ``_mm``: ``accuracy_mm``). The search task's ``evaluate`` and each fan-out task's
``glue_evaluate`` score through here, so every task scores the same way whichever role it has."""
from __future__ import annotations

import pandas as pd

from kdnas.data.batching import encode
from kdnas.data.loading import check_task_data, task_split
from kdnas.data.tasks import Task
from kdnas.device import resolve_compute
from kdnas.distillation.training import predict
from kdnas.evaluation.metrics import glue_metrics, predictions
from kdnas.models.loading import count_parameters, load_model_and_tokenizer

# extra dev splits and the suffix their metrics get
EXTRA_SPLITS = {"dev_mismatched": "_mm"}


def dev_splits(task: Task) -> list[str]:
    return ["dev"] + [split for split, _ in task.splits if split in EXTRA_SPLITS]


def score_models(params: dict, task: Task, models: dict[str, str]) -> tuple[dict, dict, pd.DataFrame]:
    """Scores each model (name -> saved folder) on the task's dev splits.

    Returns:
        (name -> metrics with ``params``, name -> predictions on ``dev``, the ``dev`` rows).
    """
    splits = dev_splits(task)
    check_task_data(params, splits=tuple(splits))
    data = {split: task_split(params, split, "dev_size") for split in splits}
    batch, max_len = params["evaluate"]["batch_size"], params["data"]["max_length"]
    compute = resolve_compute(params)
    scores, preds = {}, {}
    for name, path in models.items():
        model, tokenizer = load_model_and_tokenizer(path, compute=compute)
        scores[name] = {"params": count_parameters(model)}
        for split, frame in data.items():
            logits = predict(model, encode(tokenizer, frame, max_len), batch_size=batch, compute=compute)
            suffix = EXTRA_SPLITS.get(split, "")
            scores[name].update({f"{m}{suffix}": v for m, v in glue_metrics(task, frame["label"].to_numpy(), logits).items()})
            if split == "dev":
                preds[name] = predictions(task, logits)
    return scores, preds, data["dev"]
