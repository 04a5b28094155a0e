"""Stage 4: longer proxy distillation of the top-k, ranked by reward."""
from __future__ import annotations

from pathlib import Path

from kdnas.arch import Arch
from kdnas.cache import load_encoded
from kdnas.candidates import distill_candidate
from kdnas.checkpoint import stage_checkpoint
from kdnas.io import read_json, write_json
from kdnas.pipeline.common import load_teacher, seed_everything
from kdnas.search.reward import reward
from kdnas.tasks import get_task


def distill_topk_stage(args, params: dict) -> str:
    task = get_task(params["task"])
    seed_everything(params["seed"])
    candidates = read_json(args.topk)
    teacher, tokenizer = load_teacher(args.teacher)
    max_len = params["data"]["max_length"]
    train = load_encoded(Path(args.proxy) / "train.parquet", tokenizer, max_len)
    dev = load_encoded(Path(args.proxy) / "dev.parquet", tokenizer, max_len)
    rw = params["search"]["reward"]
    checkpoint = stage_checkpoint("distill_topk", params, [args.teacher, args.proxy, args.topk])
    ranking = []
    for trial in candidates:
        arch = Arch.from_key(trial["arch"])
        # a rerun after a kill skips finished candidates: each one's result depends only on its own seed
        result = checkpoint.done(arch.key) if checkpoint else None
        if result is None:
            _, result = distill_candidate(teacher, arch, task, train, dev, params["distill_topk"],
                                          params["space"]["init"], params["seed"], show_progress=True,
                                          checkpoint=checkpoint.sub(arch.key) if checkpoint else None)
            if checkpoint:
                checkpoint.mark_done(arch.key, result)
        target_ms = trial["latency_ms"] * trial["speedup"] / rw["target_speedup"]  # teacher_ms / target speed-up
        value = reward(max(result["score"], 0.0), trial["latency_ms"], target_ms, rw["alpha"], rw["beta"])
        ranking.append({"arch": arch.key, **arch.to_dict(), **result, "search_score": trial["score"],
                        "search_latency_ms": trial["latency_ms"], "search_speedup": trial["speedup"],
                        "reward": value})
    ranking.sort(key=lambda r: (-r["reward"], r["arch"]))
    for rank, row in enumerate(ranking, start=1):
        row["rank"] = rank
    write_json(args.ranking, ranking)
    if checkpoint:
        checkpoint.clear()
    return f"wrote {args.ranking}: {len(ranking)} candidates, first {ranking[0]['arch']} reward {ranking[0]['reward']:.4f}"
