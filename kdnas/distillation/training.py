"""One training loop for fine-tuning and distillation, and batched inference."""
from __future__ import annotations

import logging
import math
import random
import time
from contextlib import ExitStack

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from kdnas.data.batching import Encoded, collate, length_grouped_batches
from kdnas.device import CPU, Compute
from kdnas.distillation.checkpoint import (
    Checkpoint,
    StopRequested,
    rng_state,
    set_rng_state,
    sigterm_at_step_boundary,
)
from kdnas.distillation.losses.registry import WeightedLoss
from kdnas.distillation.seen_vocabulary import seen_rows_only

log = logging.getLogger(__name__)


@torch.inference_mode()
def predict(model, data: Encoded, batch_size: int = 128, desc: str | None = None, compute: Compute = CPU) -> np.ndarray:
    """Logits for every example, in the data's order (batched by length for speed), run on ``compute``'s
    device and precision; the model must already be there."""
    model.eval()
    batches = length_grouped_batches(data.lengths, batch_size, seed=None)
    outputs = [None] * len(batches)
    loader = _loader(_StepInputs(data), batches, compute)
    for b, item in enumerate(tqdm(loader, total=len(batches), desc=desc, disable=desc is None, leave=False)):
        with compute.autocast():
            outputs[b] = model(**compute.to_device(item["inputs"])).logits.float().cpu().numpy()
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


class _StepInputs(torch.utils.data.Dataset):
    """What one step reads for a batch of example indices: padded inputs, labels, and the teacher's cached
    logits (and states) when the signal comes from the cache. Built on the CPU, ahead of the step when a
    loader worker runs (see :meth:`Compute.loader_workers`)."""

    def __init__(self, data: Encoded, signal: str | None = None, needs_attentions: bool = False):
        self.data, self.signal, self.needs_attentions = data, signal, needs_attentions
        self.labels = torch.as_tensor(np.array(data.labels))  # a copy: parquet-backed arrays are read-only

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: np.ndarray) -> dict:
        inputs = collate(self.data, index)
        item = {"inputs": inputs, "labels": self.labels[index]}
        cached = self.signal in ("cached logits", "cached states") and self.data.teacher_logits is not None
        if cached:
            item["teacher_logits"] = torch.from_numpy(self.data.teacher_logits[index])
        if self.signal == "cached states":
            item["teacher_states"] = self.data.teacher_states.batch(index, inputs["input_ids"].shape[1],
                                                                    self.needs_attentions)
        return item


def _loader(inputs: _StepInputs, batches: list[np.ndarray], compute: Compute) -> torch.utils.data.DataLoader:
    """Batches in the given order; pinned and prepared by a worker on a GPU. Its own generator: a loader
    must not draw from the global RNG, whose stream the dropout masks (and so resume) depend on."""
    workers = compute.loader_workers
    return torch.utils.data.DataLoader(inputs, batch_size=None, sampler=batches, collate_fn=_as_built,
                                       num_workers=workers, pin_memory=compute.is_cuda,
                                       prefetch_factor=4 if workers else None, generator=torch.Generator())


def _as_built(item: dict) -> dict:
    return item  # the loader's default would turn tuples into lists


def _teacher_outputs(teacher, batch: dict, item: dict, loss: WeightedLoss, signal: str) -> dict:
    mask = batch["attention_mask"]
    if signal == "cached logits":
        # fine-tuning has no teacher; a distillation term reading absent logits fails loudly (KeyError)
        if "teacher_logits" not in item:
            return {"attention_mask": mask}
        return {"logits": item["teacher_logits"], "attention_mask": mask}
    if signal == "cached states":
        return {"logits": item["teacher_logits"], "attention_mask": mask, **item["teacher_states"]}
    with torch.inference_mode():
        out = teacher(**batch, output_hidden_states=loss.needs_states, output_attentions=loss.needs_attentions)
    return {"logits": out.logits.clone(),
            "hidden_states": [h.clone() for h in out.hidden_states] if out.hidden_states else None,
            "attentions": [a.clone() for a in out.attentions] if out.attentions else None,
            "attention_mask": mask}


def train_model(model, data: Encoded, loss: WeightedLoss, *, epochs: int, lr: float, batch_size: int, seed: int,
                weight_decay: float = 0.01, warmup_ratio: float = 0.0, teacher=None, desc: str = "train",
                show_progress: bool = True, teacher_in_loop: bool = False, checkpoint: Checkpoint | None = None,
                compute: Compute = CPU) -> dict:
    """Trains ``model`` (and the loss's own parameters, e.g. projections) in place, on ``compute``'s device
    and precision (the model, loss and teacher are moved there; the model stays there afterwards).

    Teacher signals come from ``data.teacher_logits`` and, for losses that need hidden states or
    attentions, from ``data.teacher_states`` when the proxy stage cached them (:mod:`kdnas.data.teacher_states`);
    otherwise ``teacher`` runs in the loop (eval mode, no gradients). ``teacher_in_loop`` forces that even
    when cached (to measure what the cache saves).

    With ``checkpoint``, the whole training state (model, loss parameters and buffers, optimizer, scheduler,
    gradient scaler, RNG states, position in the deterministic batch order, running history) is saved every
    ``checkpoint.every_steps`` optimizer steps and resumed from when present, so a resumed run ends with
    the same tensors as an uninterrupted one (on the CPU bit for bit; on a GPU up to the nondeterminism of
    its kernels); SIGTERM saves at the next step boundary and raises :class:`StopRequested`. A checkpoint
    saved on another device type or precision is refused (:meth:`Checkpoint.load_training`); the checkpoint's
    ``compute`` is the one this run trains in.

    Returns:
        A history dict: steps, seconds, examples per second, mean loss per epoch and per term, and
        ``teacher_signal`` (see :func:`teacher_signal`).
    """
    with seen_rows_only(model, data):  # the embedding rows no training token looks up stay out of the update
        return _train(model, data, loss, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                      weight_decay=weight_decay, warmup_ratio=warmup_ratio, teacher=teacher, desc=desc,
                      show_progress=show_progress, teacher_in_loop=teacher_in_loop, checkpoint=checkpoint,
                      compute=compute)


def _train(model, data: Encoded, loss: WeightedLoss, *, epochs: int, lr: float, batch_size: int, seed: int,
           weight_decay: float, warmup_ratio: float, teacher, desc: str, show_progress: bool, teacher_in_loop: bool,
           checkpoint: Checkpoint | None, compute: Compute) -> dict:
    torch.manual_seed(seed)
    signal = teacher_signal(data, loss, teacher_in_loop)
    if signal == "teacher in the loop" and teacher is None:
        raise ValueError(f"loss {loss} needs the teacher in the loop")
    compute.place(model)
    compute.place(loss)
    if teacher is not None:
        compute.place(teacher).eval()
    model.train()
    loss.train()
    decay, no_decay = [], []
    for name, param in list(model.named_parameters()) + list(loss.named_parameters()):
        (no_decay if param.ndim < 2 else decay).append(param)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr,
                                  fused=compute.fused_optimizer or None)
    scaler = compute.grad_scaler()
    steps_per_epoch = math.ceil(len(data) / batch_size)
    total = steps_per_epoch * epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total), total)
    lengths = data.lengths
    step_inputs = _StepInputs(data, signal, loss.needs_attentions)
    history = {"epochs": [], "steps": 0, "teacher_signal": signal}
    epoch0, batch0, step, sums, count, seconds0 = 0, 0, 0, {}, 0, 0.0
    saved = checkpoint.load_training() if checkpoint else None
    if saved:
        model.load_state_dict(saved["model"])
        loss.load_state_dict(saved["loss"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        if scaler.is_enabled():
            scaler.load_state_dict(saved["scaler"])
        set_rng_state(saved["rng"], compute.device)
        epoch0, batch0, step = saved["epoch"], saved["batch"], saved["step"]
        sums, count, history, seconds0 = saved["sums"], saved["count"], saved["history"], saved["seconds"]
        log.info("%s: resuming from the checkpoint at step %d of %d", desc, step, total)
    # running sums stay on the device as float64 (the same sums as Python floats, without a sync per step)
    sums = {name: torch.tensor(value, dtype=torch.float64, device=compute.device) for name, value in sums.items()}
    start = time.perf_counter()

    def save(epoch: int, next_batch: int) -> None:
        state = {"model": model.state_dict(), "loss": loss.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "rng": rng_state(compute.device), "epoch": epoch,
                 "batch": next_batch, "step": step, "sums": {k: float(v) for k, v in sums.items()}, "count": count,
                 "history": history, "seconds": seconds0 + time.perf_counter() - start}
        if scaler.is_enabled():
            state["scaler"] = scaler.state_dict()
        checkpoint.save_training(state)

    with ExitStack() as stack:
        sigterm = stack.enter_context(sigterm_at_step_boundary()) if checkpoint else None
        bar = stack.enter_context(tqdm(total=total, initial=step, desc=desc, disable=not show_progress, leave=False,
                                       mininterval=2.0))
        for epoch in range(epoch0, epochs):
            # the batch order is a function of (seed, epoch): a resumed run skips the batches already done
            batches = length_grouped_batches(lengths, batch_size, seed=seed * 1000 + epoch)
            first = batch0 if epoch == epoch0 else 0
            for b, item in enumerate(_loader(step_inputs, batches[first:], compute), start=first):
                item = compute.to_device(item)
                batch = item["inputs"]
                with compute.autocast():
                    teacher_out = _teacher_outputs(teacher, batch, item, loss, signal)
                    out = model(**batch, output_hidden_states=loss.needs_states,
                                output_attentions=loss.needs_attentions)
                    student_out = {"logits": out.logits, "hidden_states": out.hidden_states,
                                   "attentions": out.attentions, "attention_mask": batch["attention_mask"]}
                    value, parts = loss(student_out, teacher_out, item["labels"])
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(value).backward()
                scaler.unscale_(optimizer)  # clip the true gradients (nothing to undo unless fp16)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                for name, part in {"loss": value.detach(), **parts}.items():
                    part = part.double()
                    sums[name] = sums[name] + part if name in sums else part
                count += 1
                step += 1
                bar.update(1)
                if count % 50 == 0:
                    bar.set_postfix(loss=f"{float(sums['loss']) / count:.4f}")
                last = b + 1 == len(batches)
                if last:
                    history["epochs"].append({name: float(total_) / count for name, total_ in sums.items()})
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


def seed_everything(seed: int) -> None:
    """Python's, numpy's and torch's global generators, before a stage's work."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
