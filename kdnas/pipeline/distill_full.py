"""Stage 6: distil the winner on the full training subset."""
from __future__ import annotations

import pandas as pd

from kdnas.arch import Arch
from kdnas.cache import load_encoded
from kdnas.checkpoint import stage_checkpoint
from kdnas.device import resolve_compute
from kdnas.errors import KdnasError
from kdnas.importance import inheritance_scores
from kdnas.io import atomic_path, read_json, write_json
from kdnas.losses import attention_implementation, build_loss
from kdnas.models import count_parameters, save_model
from kdnas.pipeline.common import load_teacher, seed_everything
from kdnas.search.reward import reward
from kdnas.students import build_student
from kdnas.tasks import task_of
from kdnas.training import train_model


def pick_winner(ranking: list[dict], latency: pd.DataFrame, params: dict) -> dict:
    """Re-scores the ranked candidates with measured latency (the search's batch size) and takes the best.

    Ties in reward go to the lower latency. Under ``search.latency.mode: analytic`` the winner is chosen with
    the latency the search optimised (the MAC count, in distill_topk's reward), so measurement noise never
    changes it; the measured latency is still recorded beside it.
    """
    latency = latency[latency["backend"] == "eager"] if "backend" in latency else latency
    batch_size = params["search"]["latency"]["batch_size"]
    sizes = sorted(latency["batch_size"].unique())
    batch_size = batch_size if batch_size in sizes else min(sizes, key=lambda s: abs(s - batch_size))
    at = latency[latency["batch_size"] == batch_size].set_index("model")
    rw = params["search"]["reward"]
    target_ms = at.loc["teacher", "median_ms"] / rw["target_speedup"]
    rescored = []
    for row in ranking:
        if row["arch"] not in at.index:
            raise KdnasError(f"candidate {row['arch']} has no latency measurement; rerun the latency stage")
        ms = float(at.loc[row["arch"], "median_ms"])
        rescored.append({**row, "latency_ms": ms, "speedup": float(at.loc[row["arch"], "speedup"]),
                         "latency_batch_size": int(batch_size),
                         "final_reward": reward(max(row["score"], 0.0), ms, target_ms, rw["alpha"], rw["beta"])})
    if params["search"]["latency"]["mode"] == "analytic":
        for row in rescored:
            row["final_reward"] = row["reward"]
        return max(rescored, key=lambda r: (r["final_reward"], -r["search_latency_ms"], r["arch"]))
    # equal rewards (e.g. equal accuracy, both on target): the faster student wins
    return max(rescored, key=lambda r: (r["final_reward"], -r["latency_ms"], r["arch"]))


def distill_arch(arch: Arch, teacher, train, params: dict, importance: dict | None, checkpoint, attn: str | None):
    """Builds ``arch`` from ``teacher`` and distils it on ``train`` with the ``distill_full`` recipe: the one
    recipe of the searched student and of the hand-crafted students it is compared with.

    Returns:
        (student with sdpa attention, the loss, the training history).
    """
    task, cfg = task_of(params), params["distill_full"]
    student = build_student(teacher, arch, init=params["space"]["init"], seed=params["seed"], importance=importance)
    if attn:
        student.config._attn_implementation = attn
    loss = build_loss(cfg["losses"], temperature=cfg["temperature"], regression=task.is_regression,
                      student_config=student.config, teacher_config=teacher.config)
    history = train_model(student, train, loss, epochs=cfg["epochs"], lr=cfg["lr"], batch_size=cfg["batch_size"],
                          seed=params["seed"], weight_decay=cfg.get("weight_decay", 0.01),
                          warmup_ratio=cfg.get("warmup_ratio", 0.0), teacher=teacher, desc=f"distill {arch.key}",
                          checkpoint=checkpoint, compute=resolve_compute(params))
    student.config._attn_implementation = "sdpa"
    return student, loss, history


def distill_full_stage(args, params: dict) -> str:
    return distill_winner(args, params, importance=inheritance_scores(params, args.proxy))


def distill_winner(args, params: dict, importance: dict | None) -> str:
    """Picks the winner, builds it from ``args.teacher`` and distils it on ``args.transfer``.

    ``importance``: the inheritance scores (:mod:`kdnas.importance`); None = weight magnitude.
    """
    task = task_of(params)
    winner = pick_winner(read_json(args.ranking), pd.read_csv(args.latency), params)
    arch = Arch.from_key(winner["arch"])
    checkpoint = stage_checkpoint(f"distill_full/{task.name}", params, [args.teacher, args.transfer, args.ranking, args.latency])
    compute = resolve_compute(params)
    seed_everything(params["seed"])
    attn = attention_implementation(params["distill_full"], task.is_regression)
    teacher, tokenizer = load_teacher(args.teacher, attn_implementation=attn, compute=compute)
    train = load_encoded(args.transfer, tokenizer, params["data"]["max_length"])
    student, loss, history = distill_arch(arch, teacher, train, params, importance, checkpoint, attn)
    with atomic_path(args.model) as tmp:
        save_model(student, tokenizer, tmp)
    write_json(args.summary, {"winner": winner, "arch": arch.to_dict(), "params": count_parameters(student),
                              "loss": str(loss), "train_examples": len(train), "history": history})
    if checkpoint:
        checkpoint.clear()
    return (f"wrote {args.model}: {arch.key}, {count_parameters(student) / 1e6:.1f}M params, "
            f"{history['seconds']:.0f}s on {len(train)} rows")
