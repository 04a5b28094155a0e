"""Stage 6: distil the winner on the full training subset."""
from __future__ import annotations

from kdnas.data.logit_tables import load_encoded
from kdnas.data.tasks import task_of
from kdnas.device import resolve_compute
from kdnas.distillation.checkpoint import stage_checkpoint
from kdnas.distillation.importance import inheritance_scores
from kdnas.distillation.losses import attention_implementation
from kdnas.distillation.recipe import distill_arch
from kdnas.distillation.training import seed_everything
from kdnas.errors import KdnasError
from kdnas.io import atomic_path, read_json, write_json
from kdnas.latency.table import LatencyTable
from kdnas.models.arch import Arch
from kdnas.models.loading import count_parameters, load_model_and_tokenizer, save_model
from kdnas.pipeline.manifest import MANIFEST
from kdnas.search.reward import objective


def pick_winner(ranking: list[dict], latency: LatencyTable, params: dict) -> dict:
    """Re-scores the ranked candidates with measured latency (the search's batch size and backend,
    ``search.latency.backend``) and takes the best.

    Ties in reward go to the lower latency. Under ``search.latency.mode: analytic`` the winner is chosen with
    the latency the search optimised (the MAC count, in distill_topk's reward), so measurement noise never
    changes it; the measured latency is still recorded beside it.
    """
    backend = params["search"]["latency"]["backend"]
    batch_size = latency.nearest_batch_size(params["search"]["latency"]["batch_size"], backend)
    at = latency.at(batch_size, backend)
    # the reference is the fp32 teacher in eager PyTorch on every backend, as in the search's reward
    teacher_ms = float(latency.at(batch_size).loc["teacher", "median_ms"])
    rw = params["search"]["reward"]
    rescored = []
    for row in ranking:
        if row["arch"] not in at.index:
            raise KdnasError(f"candidate {row['arch']} has no {backend} latency measurement; rerun the latency stage")
        ms = float(at.loc[row["arch"], "median_ms"])
        rescored.append({**row, "latency_ms": ms, "speedup": teacher_ms / ms, "latency_batch_size": int(batch_size),
                         **({} if backend == "eager" else {"latency_backend": backend}),
                         "final_reward": objective(row["score"], ms, teacher_ms, rw)})
    if params["search"]["latency"]["mode"] == "analytic":
        for row in rescored:
            row["final_reward"] = row["reward"]
        return max(rescored, key=lambda r: (r["final_reward"], -r["search_latency_ms"], r["arch"]))
    # equal rewards (e.g. equal accuracy, both on target): the faster student wins
    return max(rescored, key=lambda r: (r["final_reward"], -r["latency_ms"], r["arch"]))


def distill_full_stage(paths, params: dict) -> str:
    return distill_winner(paths, params, importance=inheritance_scores(params, paths.proxy),
                          tracked=MANIFEST["distill_full"].params)


def distill_winner(paths, params: dict, importance: dict | None, tracked: tuple[str, ...],
                   expected: str | None = None) -> str:
    """Picks the winner, builds it from ``paths.teacher`` and distils it on ``paths.transfer``.

    ``importance``: the inheritance scores (:mod:`kdnas.distillation.importance`); None = weight magnitude. ``tracked``: the
    running stage's declared params (distill_full's or glue_distill's), which key its checkpoint.
    ``expected``: the architecture the winner must be (the GLUE fan-out's: the search task's student), checked
    before any work.
    """
    task = task_of(params)
    winner = pick_winner(read_json(paths.ranking), LatencyTable.read(paths.latency), params)
    if expected is not None and winner["arch"] != expected:  # equal inputs cannot differ: a hand-edited ranking
        raise KdnasError(f"picked {winner['arch']} but the search task's student is {expected}; rerun distill_full")
    arch = Arch.from_key(winner["arch"])
    checkpoint = stage_checkpoint(f"distill_full/{task.name}", params,
                                  [paths.teacher, paths.transfer, paths.ranking, paths.latency],
                                  tracked=tracked)
    compute = resolve_compute(params)
    seed_everything(params["seed"])
    attn = attention_implementation(params["distill_full"], task.is_regression)
    teacher, tokenizer = load_model_and_tokenizer(paths.teacher, attn_implementation=attn, compute=compute)
    train = load_encoded(paths.transfer, tokenizer, params["data"]["max_length"])
    student, loss, history = distill_arch(arch, teacher, train, params, importance, checkpoint, attn)
    with atomic_path(paths.model) as tmp:
        save_model(student, tokenizer, tmp)
    write_json(paths.summary, {"winner": winner, "arch": arch.to_dict(), "params": count_parameters(student),
                              "loss": str(loss), "train_examples": len(train), "history": history})
    if checkpoint:
        checkpoint.clear()
    return (f"wrote {paths.model}: {arch.key}, {count_parameters(student) / 1e6:.1f}M params, "
            f"{history['seconds']:.0f}s on {len(train)} rows")
