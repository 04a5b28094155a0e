"""GLUE fan-out, per task: dev metrics of the task's teacher and of the searched student.

MNLI is scored on its matched and mismatched dev sets (``accuracy`` and ``accuracy_mm``). GLUE's test
labels are hidden, so there is no test score here; a split with labels of one's own would be one more
entry in the task's ``splits``.
"""
from __future__ import annotations

import pandas as pd

from kdnas.batching import encode
from kdnas.glue_params import task_params
from kdnas.io import atomic_path, write_json
from kdnas.metrics import glue_metrics, percent_of_teacher, predictions
from kdnas.models import count_parameters
from kdnas.pipeline.common import check_task_data, load_teacher, task_split
from kdnas.tasks import get_task
from kdnas.training import predict

# extra dev splits and the suffix their metrics get
EXTRA_SPLITS = {"dev_mismatched": "_mm"}


def glue_evaluate_stage(args, params: dict) -> str:
    params = task_params(params, args.task)
    task = get_task(params["task"])
    splits = ["dev"] + [s for s, _ in task.splits if s in EXTRA_SPLITS]
    check_task_data(params, splits=tuple(splits))
    data = {split: task_split(params, split, "dev_size") for split in splits}
    batch, max_len = params["evaluate"]["batch_size"], params["data"]["max_length"]
    scores, preds = {}, {}
    for name, path in (("teacher", args.teacher), ("student", args.student)):
        model, tokenizer = load_teacher(path)
        scores[name] = {"params": count_parameters(model)}
        for split, frame in data.items():
            logits = predict(model, encode(tokenizer, frame, max_len), batch_size=batch)
            suffix = EXTRA_SPLITS.get(split, "")
            scores[name].update({f"{m}{suffix}": v for m, v in glue_metrics(task, frame["label"].to_numpy(), logits).items()})
            if split == "dev":
                preds[name] = predictions(task, logits)
    main = task.main_metric
    metrics = {"task": task.name, "main_metric": main, "teacher": scores["teacher"], "student": scores["student"],
               "percent_of_teacher": percent_of_teacher(scores["student"][main], scores["teacher"][main]),
               "dev_examples": len(data["dev"])}
    write_json(args.metrics, metrics)
    with atomic_path(args.predictions) as tmp:
        pd.DataFrame({"label": data["dev"]["label"], "teacher": preds["teacher"], "student": preds["student"]}).to_csv(tmp, index=False)
    return (f"{task.name}: wrote {args.metrics}: student {main} {scores['student'][main]:.4f} vs teacher "
            f"{scores['teacher'][main]:.4f} ({metrics['percent_of_teacher']:.1f}%) on {len(data['dev'])} dev rows")

