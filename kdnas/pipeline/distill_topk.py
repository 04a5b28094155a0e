"""Stage 4: longer proxy distillation of the search's top-k, ranked by reward.

Three modes over the same per-candidate code, so both engines give the same ranking:
- ``run`` (DVC): every top-k candidate in one process, then the ranking;
- ``candidate`` (a Snakemake job per candidate, fanned out from the search checkpoint): one candidate;
- ``gather`` (Snakemake): the per-candidate results, ranked.
"""
from __future__ import annotations

from kdnas.device import resolve_compute
from kdnas.distillation.checkpoint import stage_checkpoint
from kdnas.distillation.training import seed_everything
from kdnas.errors import KdnasError
from kdnas.io import read_json, write_json
from kdnas.models.arch import Arch
from kdnas.pipeline.manifest import MANIFEST
from kdnas.search.proxy_tasks import distill_on_sets, load_proxy_sets, task_paths
from kdnas.search.reward import objective
from kdnas.task_params import search_tasks


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
    """The teachers and proxy sets of every search task, loaded once for any number of candidates."""

    def __init__(self, paths, params: dict, checkpoint_name: str):
        self.params = params
        folders = {"teacher": paths.teacher, "proxies": paths.proxies, "glue": paths.glue}
        inputs = [p for name in search_tasks(params) for p in task_paths(params, name, **folders)]
        # a rerun after a kill skips finished candidates (each result depends only on its own seed) and
        # resumes the one in training
        self.checkpoint = stage_checkpoint(checkpoint_name, params, [*inputs, paths.ranked],
                                           tracked=MANIFEST["distill_topk"].params)
        self.compute = resolve_compute(params)
        seed_everything(params["seed"])
        self.sets = load_proxy_sets(params, "distill_topk", compute=self.compute, **folders)

    def distill(self, trial: dict) -> dict:
        """One candidate's longer distillation, with what the search measured (no reward yet)."""
        arch = Arch.from_key(trial["arch"])
        result = self.checkpoint.done(arch.key) if self.checkpoint else None
        if result is None:
            result = distill_on_sets(arch, self.sets, self.params["distill_topk"], self.params["space"]["init"],
                                     self.params["seed"], self.compute, show_progress=True,
                                     checkpoint=self.checkpoint.sub(arch.key) if self.checkpoint else None)
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


def distill_topk_stage(paths, params: dict) -> str:
    k = params["distill_topk"]["k"]
    if paths.gather:
        if len(paths.gather) != k:  # the fan-out must have produced exactly the top-k
            raise KdnasError(f"distill_topk.k = {k} but {len(paths.gather)} candidate results were given")
        ranking = rank_candidates([read_json(path) for path in paths.gather], params["search"]["reward"])
        write_json(paths.ranking, ranking)
        return _summary(paths.ranking, ranking)
    ranked = read_json(paths.ranked)
    if paths.arch:
        trial = find_trial(ranked, paths.arch)  # checked before loading any model
        proxy_run = _ProxyRun(paths, params, f"distill_candidate/{paths.arch}")
        write_json(paths.candidate, proxy_run.distill(trial))
        proxy_run.clear_checkpoint()
        return f"wrote {paths.candidate}: {paths.arch}"
    chosen = select_topk(ranked, k)
    proxy_run = _ProxyRun(paths, params, "distill_topk")
    ranking = rank_candidates([proxy_run.distill(trial) for trial in chosen], params["search"]["reward"])
    write_json(paths.ranking, ranking)
    proxy_run.clear_checkpoint()
    return _summary(paths.ranking, ranking)
