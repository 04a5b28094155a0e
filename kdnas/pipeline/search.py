"""Stage 3: the architecture search."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from kdnas.cache import load_encoded
from kdnas.io import atomic_path, write_json
from kdnas.pipeline.common import load_teacher, seed_everything
from kdnas.search.runner import run_search, top_k
from kdnas.tasks import get_task


def search_stage(args, params: dict) -> str:
    task = get_task(params["task"])
    seed_everything(params["seed"])
    teacher, tokenizer = load_teacher(args.teacher)
    max_len = params["data"]["max_length"]
    train = load_encoded(Path(args.proxy) / "train.parquet", tokenizer, max_len)
    dev = load_encoded(Path(args.proxy) / "dev.parquet", tokenizer, max_len)
    trials = run_search(params, teacher, task, train, dev, Path(args.trials))
    best = top_k(trials, params["search"]["top_k"])
    with atomic_path(args.trials_csv) as tmp:
        pd.DataFrame(trials).to_csv(tmp, index=False)
    write_json(args.topk, best)
    return (f"wrote {args.trials} ({len(trials)} trials) and {args.topk}: best {best[0]['arch']} "
            f"reward {best[0]['reward']:.4f} ({task.main_metric} {best[0]['score']:.4f}, {best[0]['speedup']:.2f}x)")
