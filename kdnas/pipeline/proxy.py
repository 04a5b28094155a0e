"""Stage 2: the proxy sets with cached teacher logits, and what candidates would otherwise recompute:
teacher hidden states / attentions (when the search's or distill_topk's losses need them and they fit
``proxy.state_cache_mb``) and the gradient importance scores students inherit by (``space.importance``)."""
from __future__ import annotations

import logging
from pathlib import Path

from kdnas.data.batching import encode
from kdnas.data.loading import check_task_data, full_split, split_proxy
from kdnas.data.logit_tables import (
    TEACHER_FINGERPRINT,
    teacher_fingerprint,
    write_logit_table,
)
from kdnas.data.tasks import task_of
from kdnas.data.teacher_states import state_bytes, states_path, write_states
from kdnas.device import resolve_compute
from kdnas.distillation.importance import (
    IMPORTANCE_FILE,
    gradient_importance,
    save_importance,
)
from kdnas.distillation.losses import build_loss
from kdnas.distillation.training import predict, seed_everything
from kdnas.io import atomic_path, write_json
from kdnas.models.loading import load_model_and_tokenizer

log = logging.getLogger(__name__)


def needed_states(params: dict, teacher_config, regression: bool) -> tuple[bool, bool]:
    """(hidden states, attentions): what the search's and distill_topk's losses read from the teacher."""
    hidden = attentions = False
    for block in ("search", "distill_topk"):
        cfg = params[block]
        # which states a loss reads does not depend on its temperature, which is left out (and untracked here)
        loss = build_loss(cfg["losses"], temperature=1.0, regression=regression,
                          student_config=teacher_config, teacher_config=teacher_config)
        hidden, attentions = hidden or loss.needs_states, attentions or loss.needs_attentions
    return hidden, attentions


def proxy_stage(paths, params: dict) -> str:
    task = task_of(params)
    check_task_data(params, splits=("train",))
    seed_everything(params["seed"])
    frame = full_split(params, "train")
    cfg = params["proxy"]
    # a different seed stream than the teacher's subset, so proxy-dev is not just the teacher's first rows
    train, dev = split_proxy(frame, cfg["train_size"], cfg["dev_size"], params["seed"] + 7919, task.is_regression)
    compute = resolve_compute(params)
    teacher, tokenizer = load_model_and_tokenizer(paths.teacher, compute=compute)
    hidden, attentions = needed_states(params, teacher.config, task.is_regression)
    if attentions:  # sdpa attention returns no attention maps
        teacher, tokenizer = load_model_and_tokenizer(paths.teacher, attn_implementation="eager", compute=compute)
    max_len = params["data"]["max_length"]
    encoded = {"train": encode(tokenizer, train, max_len), "dev": encode(tokenizer, dev, max_len)}
    # the cache's size is known from the token counts, before the teacher runs
    budget_mb = cfg["state_cache_mb"]
    need_mb = state_bytes(encoded["train"].lengths, teacher.config, hidden, attentions) / 2**20
    if not hidden:
        signal = "cached logits"
    elif need_mb <= budget_mb:
        signal = "cached states"
    else:
        signal = "teacher in the loop"
        log.warning("proxy: teacher states need %.0f MB > proxy.state_cache_mb %s: search and distill_topk will run "
                    "the teacher in the loop", need_mb, budget_mb)
    importance = params["space"]["importance"]
    with atomic_path(paths.out) as tmp:
        tmp.mkdir()
        for name, part in (("train", train), ("dev", dev)):
            write_logit_table(Path(tmp) / f"{name}.parquet", part, predict(teacher, encoded[name], compute=compute))
        if signal == "cached states":
            write_states(teacher, encoded["train"], states_path(Path(tmp) / "train.parquet"), attentions,
                         compute=compute)
        if importance == "gradient":
            save_importance(gradient_importance(teacher, encoded["train"], regression=task.is_regression,
                                                compute=compute),
                            Path(tmp) / IMPORTANCE_FILE)
        # the path taken, not the budget: a budget change that takes the same path leaves the outputs unchanged
        write_json(Path(tmp) / "states.json", {
            "teacher_signal": signal, "hidden_states": hidden, "attentions": attentions,
            "state_cache_mb_needed": round(need_mb, 1), "importance": importance,
            TEACHER_FINGERPRINT: teacher_fingerprint(paths.teacher)})
    extra = f"; teacher signal for training: {signal} ({need_mb:.0f} MB of states needed, budget {budget_mb} MB)" \
        if hidden else ""
    return (f"wrote {paths.out}: proxy-train {len(train)} rows, proxy-dev {len(dev)} rows with teacher logits"
            f"{extra}; importance {importance}")
