"""Where models train and run, and in what precision: params' ``compute`` block, resolved once per stage.

``compute.device``: ``auto`` (CUDA when torch sees a GPU, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.
``compute.precision``: ``auto`` (fp32 on the CPU; bf16 on GPUs that support it, else fp16), ``fp32``,
``bf16`` or ``fp16``. Mixed precision is plain ``torch.amp``: autocast around the forward passes and the
loss, and a gradient scaler for fp16 (bf16 has fp32's range and needs none). We use torch.amp rather than
accelerate because the training loop already owns what accelerate would wrap (the optimizer, the batch
order that resume depends on, the checkpoint) and needs only placement, autocast and scaling from it.

A stage trains on one device; ``search.workers`` processes each take one GPU of those visible
(:func:`resolve_compute`).
"""
from __future__ import annotations

import gc
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from kdnas.errors import KdnasError

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Compute:
    """A resolved device and precision."""

    device: torch.device
    precision: str

    @property
    def kind(self) -> str:
        """What a training checkpoint must match to be resumed: device type and precision (``cuda/bf16``)."""
        return f"{self.device.type}/{self.precision}"

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        """Mixed precision for a forward pass and its loss; nothing at fp32."""
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=_DTYPES[self.precision])

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling for fp16 (a disabled scaler, which changes nothing, otherwise)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    @property
    def fused_optimizer(self) -> bool:
        """Whether AdamW runs as torch's fused kernel: one pass over every parameter instead of a dozen
        elementwise ops each, the same update up to float rounding. On 2 CPU cores a distillation step of the
        default student took 1.55x as long without it, a step of the teacher's fine-tuning 1.3x (the word
        embeddings, 11.7M of the student's 14.7M parameters, dominate the update;
        ``bench/out/training_step_summary.csv``). CPU and CUDA have the kernel."""
        return self.device.type in ("cpu", "cuda")

    def place(self, module: torch.nn.Module) -> torch.nn.Module:
        return module.to(self.device)

    def to_device(self, tensors):
        """A batch (tensors, dicts, tuples and lists of them, Nones) on this device; pinned CPU memory copies
        asynchronously."""
        if isinstance(tensors, torch.Tensor):
            return tensors.to(self.device, non_blocking=True)
        if isinstance(tensors, dict):
            return {key: self.to_device(value) for key, value in tensors.items()}
        if isinstance(tensors, (tuple, list)):
            return type(tensors)(self.to_device(value) for value in tensors)
        return tensors

    @property
    def loader_workers(self) -> int:
        """Processes preparing batches ahead of the GPU (padding, cached states); none on the CPU, whose
        cores are busy training."""
        return 1 if self.is_cuda else 0

    def release(self) -> None:
        """Returns the memory of models no longer referenced (between search candidates)."""
        gc.collect()
        if self.is_cuda:
            torch.cuda.empty_cache()


CPU = Compute(torch.device("cpu"), "fp32")


def _cuda_index(device: str) -> int | None:
    return int(device.split(":", 1)[1]) if ":" in device else None


def check_compute(device: str, precision: str, where: str = "compute") -> None:
    """Raises a one-line error when this machine cannot train on ``device`` in ``precision``."""
    if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise KdnasError(f"params: {where}.device = {device!r} is invalid: use auto, cpu, cuda or cuda:N")
    if precision not in ("auto",) + PRECISIONS:
        raise KdnasError(f"params: {where}.precision = {precision!r} is invalid: use auto, fp32, bf16 or fp16")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise KdnasError(f"params: {where}.device = {device!r} but no CUDA GPU is visible to torch here "
                             f"(torch {torch.__version__}); use auto or cpu")
        index = _cuda_index(device)
        if index is not None and index >= torch.cuda.device_count():
            raise KdnasError(f"params: {where}.device = {device!r} but torch sees {torch.cuda.device_count()} "
                             "GPU(s) here (CUDA_VISIBLE_DEVICES renumbers them from 0)")
    resolved = _resolve_device(device)
    if precision == "fp16" and resolved.type == "cpu":
        raise KdnasError(f"params: {where}.precision = 'fp16' needs a CUDA device (this run trains on the CPU); "
                         "use bf16 or fp32")
    if precision == "bf16" and resolved.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise KdnasError(f"params: {where}.precision = 'bf16' but {torch.cuda.get_device_name(resolved)} has no "
                         "bf16 support; use fp16 or auto")


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if device == "cuda":
        return torch.device("cuda", 0)
    return torch.device(device)


def _resolve_precision(precision: str, device: torch.device) -> str:
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def resolve_compute(params: dict, worker_index: int | None = None) -> Compute:
    """The stage's device and precision from params' ``compute`` block (absent: auto/auto).

    ``worker_index``: a search worker process's number. With ``auto`` or ``cuda`` the workers take the
    visible GPUs one each, round-robin (sharing when there are more workers than GPUs); ``cuda:N`` puts
    them all on GPU N.
    """
    block = params.get("compute") or {}
    device, precision = block.get("device", "auto"), block.get("precision", "auto")
    check_compute(device, precision)
    resolved = _resolve_device(device)
    if worker_index is not None and resolved.type == "cuda" and _cuda_index(device) is None:
        resolved = torch.device("cuda", worker_index % torch.cuda.device_count())
    return Compute(resolved, _resolve_precision(precision, resolved))
