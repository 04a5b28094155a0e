"""One training loop for fine-tuning and distillation, and batched inference."""
from __future__ import annotations

import logging
import math
import time
from contextlib import ExitStack

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from kdnas.batching import Encoded, collate, length_grouped_batches
from kdnas.checkpoint import Checkpoint, StopRequested, rng_state, set_rng_state, sigterm_at_step_boundary
from kdnas.losses.registry import WeightedLoss

log = logging.getLogger(__name__)


@torch.inference_mode()
def predict(model, data: Encoded, batch_size: int = 128, desc: str | None = None) -> np.ndarray:
    """Logits for every example, in the data's order (batched by length for speed)."""
    model.eval()
    batches = length_grouped_batches(data.lengths, batch_size, seed=None)
    outputs = [None] * len(batches)
    for b, index in enumerate(tqdm(batches, desc=desc, disable=desc is None, leave=False)):
        outputs[b] = model(**collate(data, index)).logits.float().numpy()
    logits = np.empty((len(data), outputs[0].shape[1]), dtype=np.float32)
    for index, out in zip(batches, outputs):
        logits[index] = out
    return logits


def teacher_signal(data: Encoded, loss: WeightedLoss, in_loop: bool = False) -> str:
    """Where the teacher's signal comes from: ``cached logits``, ``cached states`` or ``teacher in the loop``."""
    if in_loop:
        return "teacher in the loop"
    if not loss.needs_states:
        return "cached logits"
    states = data.teacher_states
    if states is not None and data.teacher_logits is not None and states.covers(loss.needs_attentions):
        return "cached states"
    return "teacher in the loop"


def _teacher_outputs(teacher, batch, data: Encoded, index, loss: WeightedLoss, signal: str) -> dict:
    mask = batch["attention_mask"]
    if signal == "cached logits":
        # fine-tuning has no teacher; a distillation term reading absent logits fails loudly (KeyError)
        if data.teacher_logits is None:
            return {"attention_mask": mask}
        return {"logits": torch.from_numpy(data.teacher_logits[index]), "attention_mask": mask}
    if signal == "cached states":
        return {"logits": torch.from_numpy(data.teacher_logits[index]), "attention_mask": mask,
                **data.teacher_states.batch(index, mask.shape[1], loss.needs_attentions)}
    with torch.inference_mode():
        out = teacher(**batch, output_hidden_states=loss.needs_states, output_attentions=loss.needs_attentions)
    return {"logits": out.logits.clone(),
            "hidden_states": [h.clone() for h in out.hidden_states] if out.hidden_states else None,
            "attentions": [a.clone() for a in out.attentions] if out.attentions else None,
            "attention_mask": mask}


def train_model(model, data: Encoded, loss: WeightedLoss, *, epochs: int, lr: float, batch_size: int, seed: int,
                weight_decay: float = 0.01, warmup_ratio: float = 0.0, teacher=None, desc: str = "train",
                show_progress: bool = True, teacher_in_loop: bool = False, checkpoint: Checkpoint | None = None) -> dict:
    """Trains ``model`` (and the loss's own parameters, e.g. projections) in place.

    Teacher signals come from ``data.teacher_logits`` and, for losses that need hidden states or
    attentions, from ``data.teacher_states`` when the proxy stage cached them (:mod:`kdnas.state_cache`);
    otherwise ``teacher`` runs in the loop (eval mode, no gradients). ``teacher_in_loop`` forces that even
    when cached (to measure what the cache saves).

    With ``checkpoint``, the whole training state (model, loss parameters and buffers, optimizer, scheduler,
    RNG states, position in the deterministic batch order, running history) is saved every
    ``checkpoint.every_steps`` optimizer steps and resumed from when present, so a resumed run ends with
    the same tensors as an uninterrupted one; SIGTERM saves at the next step boundary and raises
    :class:`StopRequested`.

    Returns:
        A history dict: steps, seconds, examples per second, mean loss per epoch and per term, and
        ``teacher_signal`` (see :func:`teacher_signal`).
    """
    torch.manual_seed(seed)
    signal = teacher_signal(data, loss, teacher_in_loop)
    if signal == "teacher in the loop" and teacher is None:
        raise ValueError(f"loss {loss} needs the teacher in the loop")
    if teacher is not None:
        teacher.eval()
    model.train()
    loss.train()
    decay, no_decay = [], []
    for name, param in list(model.named_parameters()) + list(loss.named_parameters()):
        (no_decay if param.ndim < 2 else decay).append(param)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    steps_per_epoch = math.ceil(len(data) / batch_size)
    total = steps_per_epoch * epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total), total)
    lengths = data.lengths
    labels = torch.as_tensor(np.array(data.labels))
    history = {"epochs": [], "steps": 0, "teacher_signal": signal}
    epoch0, batch0, step, sums, count, seconds0 = 0, 0, 0, {}, 0, 0.0
    saved = checkpoint.load_training() if checkpoint else None
    if saved:
        model.load_state_dict(saved["model"])
        loss.load_state_dict(saved["loss"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        set_rng_state(saved["rng"])
        epoch0, batch0, step = saved["epoch"], saved["batch"], saved["step"]
        sums, count, history, seconds0 = saved["sums"], saved["count"], saved["history"], saved["seconds"]
        log.info("%s: resuming from the checkpoint at step %d of %d", desc, step, total)
    start = time.perf_counter()

    def save(epoch: int, next_batch: int) -> None:
        checkpoint.save_training({
            "model": model.state_dict(), "loss": loss.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": rng_state(), "epoch": epoch, "batch": next_batch,
            "step": step, "sums": sums, "count": count, "history": history,
            "seconds": seconds0 + time.perf_counter() - start})

    with ExitStack() as stack:
        sigterm = stack.enter_context(sigterm_at_step_boundary()) if checkpoint else None
        bar = stack.enter_context(tqdm(total=total, initial=step, desc=desc, disable=not show_progress, leave=False,
                                       mininterval=2.0))
        for epoch in range(epoch0, epochs):
            # the batch order is a function of (seed, epoch): a resumed run skips the batches already done
            batches = length_grouped_batches(lengths, batch_size, seed=seed * 1000 + epoch)
            for b in range(batch0 if epoch == epoch0 else 0, len(batches)):
                index = batches[b]
                batch = collate(data, index)
                teacher_out = _teacher_outputs(teacher, batch, data, index, loss, signal)
                out = model(**batch, output_hidden_states=loss.needs_states,
                            output_attentions=loss.needs_attentions)
                student_out = {"logits": out.logits, "hidden_states": out.hidden_states,
                               "attentions": out.attentions, "attention_mask": batch["attention_mask"]}
                value, parts = loss(student_out, teacher_out, labels[index])
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                for name, part in {"loss": float(value.detach()), **parts}.items():
                    sums[name] = sums.get(name, 0.0) + part
                count += 1
                step += 1
                bar.update(1)
                if count % 50 == 0:
                    bar.set_postfix(loss=f"{sums['loss'] / count:.4f}")
                last = b + 1 == len(batches)
                if last:
                    history["epochs"].append({name: total_ / count for name, total_ in sums.items()})
                    history["steps"] += count
                    sums, count = {}, 0
                if checkpoint and (step % checkpoint.every_steps == 0 or sigterm.requested):
                    save(epoch + 1 if last else epoch, 0 if last else b + 1)
                    if sigterm.requested:
                        raise StopRequested(f"stopped by SIGTERM after step {step} of {total}; checkpoint saved "
                                            f"in {checkpoint.folder}, rerun the stage to resume")
    model.eval()
    seconds = seconds0 + time.perf_counter() - start
    history["seconds"] = seconds
    history["examples_per_second"] = len(data) * epochs / seconds if seconds else float("nan")
    return history
