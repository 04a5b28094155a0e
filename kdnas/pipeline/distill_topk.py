"""Stage 4: longer proxy distillation of the search's top-k, ranked by reward.

Three modes over the same per-candidate code, so both engines give the same ranking:
- ``run`` (DVC): every top-k candidate in one process, then the ranking;
- ``candidate`` (a Snakemake job per candidate, fanned out from the search checkpoint): one candidate;
- ``gather`` (Snakemake): the per-candidate results, ranked.
"""
from __future__ import annotations

from pathlib import Path

from kdnas.arch import Arch
from kdnas.cache import load_encoded
from kdnas.candidates import distill_candidate
from kdnas.checkpoint import stage_checkpoint
from kdnas.device import resolve_compute
from kdnas.errors import KdnasError
from kdnas.importance import inheritance_scores
from kdnas.io import read_json, write_json
from kdnas.losses import attention_implementation
from kdnas.pipeline.common import load_teacher, seed_everything
from kdnas.search.reward import objective
from kdnas.tasks import task_of


def select_topk(ranked: list[dict], k: int) -> list[dict]:
    """The first k trials of the search's ranking (best reward first)."""
    if k > len(ranked):
        raise KdnasError(f"distill_topk.k = {k} exceeds the {len(ranked)} trials the search produced")
    return ranked[:k]


def find_trial(ranked: list[dict], key: str) -> dict:
    for trial in ranked:
        if trial["arch"] == key:
            return trial
    raise KdnasError(f"candidate {key!r} is not among the search's {len(ranked)} trials")


class _ProxyRun:
    """The teacher and proxy sets, loaded once for any number of candidates."""

    def __init__(self, args, params: dict, checkpoint_name: str):
        self.params = params
        # a rerun after a kill skips finished candidates (each result depends only on its own seed) and
        # resumes the one in training
        self.checkpoint = stage_checkpoint(checkpoint_name, params, [args.teacher, args.proxy, args.ranked])
        self.task = task_of(params)
        self.compute = resolve_compute(params)
        seed_everything(params["seed"])
        self.teacher, tokenizer = load_teacher(args.teacher, attention_implementation(params["distill_topk"],
                                                                                      self.task.is_regression),
                                               self.compute)
        max_len = params["data"]["max_length"]
        self.train = load_encoded(Path(args.proxy) / "train.parquet", tokenizer, max_len)
        self.dev = load_encoded(Path(args.proxy) / "dev.parquet", tokenizer, max_len)
        self.importance = inheritance_scores(params, args.proxy)

    def distill(self, trial: dict) -> dict:
        """One candidate's longer distillation, with what the search measured (no reward yet)."""
        arch = Arch.from_key(trial["arch"])
        result = self.checkpoint.done(arch.key) if self.checkpoint else None
        if result is None:
            _, result = distill_candidate(self.teacher, arch, self.task, self.train, self.dev,
                                          self.params["distill_topk"], self.params["space"]["init"],
                                          self.params["seed"], show_progress=True, importance=self.importance,
                                          checkpoint=self.checkpoint.sub(arch.key) if self.checkpoint else None,
                                          compute=self.compute)
            self.compute.release()
            if self.checkpoint:
                self.checkpoint.mark_done(arch.key, result)
        return {"arch": arch.key, **arch.to_dict(), **result, "search_score": trial["score"],
                "search_latency_ms": trial["latency_ms"], "search_speedup": trial["speedup"]}

    def clear_checkpoint(self) -> None:
        if self.checkpoint:
            self.checkpoint.clear()


def rank_candidates(rows: list[dict], rw: dict) -> list[dict]:
    """Rewards each distilled candidate (search latency, longer-distilled score) and ranks them."""
    ranking = []
    for row in rows:
        teacher_ms = row["search_latency_ms"] * row["search_speedup"]
        value = objective(row["score"], row["search_latency_ms"], teacher_ms, rw)
        ranking.append({**row, "reward": value})
    ranking.sort(key=lambda r: (-r["reward"], r["arch"]))
    for rank, row in enumerate(ranking, start=1):
        row["rank"] = rank
    return ranking


def _summary(path, ranking: list[dict]) -> str:
    return f"wrote {path}: {len(ranking)} candidates, first {ranking[0]['arch']} reward {ranking[0]['reward']:.4f}"


def distill_topk_stage(args, params: dict) -> str:
    k = params["distill_topk"]["k"]
    if args.gather:
        if len(args.gather) != k:  # the fan-out must have produced exactly the top-k
            raise KdnasError(f"distill_topk.k = {k} but {len(args.gather)} candidate results were given")
        ranking = rank_candidates([read_json(path) for path in args.gather], params["search"]["reward"])
        write_json(args.ranking, ranking)
        return _summary(args.ranking, ranking)
    ranked = read_json(args.ranked)
    if args.arch:
        trial = find_trial(ranked, args.arch)  # checked before loading any model
        proxy_run = _ProxyRun(args, params, f"distill_candidate/{args.arch}")
        write_json(args.candidate, proxy_run.distill(trial))
        proxy_run.clear_checkpoint()
        return f"wrote {args.candidate}: {args.arch}"
    chosen = select_topk(ranked, k)
    proxy_run = _ProxyRun(args, params, "distill_topk")
    ranking = rank_candidates([proxy_run.distill(trial) for trial in chosen], params["search"]["reward"])
    write_json(args.ranking, ranking)
    proxy_run.clear_checkpoint()
    return _summary(args.ranking, ranking)
