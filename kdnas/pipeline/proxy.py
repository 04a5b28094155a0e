"""Stage 2: the proxy sets with cached teacher logits."""
from __future__ import annotations

from pathlib import Path

from kdnas.batching import encode
from kdnas.cache import write_logit_table
from kdnas.data import split_proxy
from kdnas.io import atomic_path
from kdnas.pipeline.common import check_task_data, full_split, load_teacher, seed_everything
from kdnas.tasks import get_task
from kdnas.training import predict


def proxy_stage(args, params: dict) -> str:
    task = get_task(params["task"])
    check_task_data(params, splits=("train",))
    seed_everything(params["seed"])
    frame = full_split(params, "train")
    cfg = params["proxy"]
    # a different seed stream than the teacher's subset, so proxy-dev is not just the teacher's first rows
    train, dev = split_proxy(frame, cfg["train_size"], cfg["dev_size"], params["seed"] + 7919, task.is_regression)
    teacher, tokenizer = load_teacher(args.teacher)
    max_len = params["data"]["max_length"]
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        for name, part in (("train", train), ("dev", dev)):
            logits = predict(teacher, encode(tokenizer, part, max_len))
            write_logit_table(Path(tmp) / f"{name}.parquet", part, logits)
    return f"wrote {args.out}: proxy-train {len(train)} rows, proxy-dev {len(dev)} rows with teacher logits"
