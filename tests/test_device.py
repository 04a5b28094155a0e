"""Where models train and in what precision (kdnas.device): how params resolve, search workers' GPUs, and a
mixed-precision training step with every loss, on real SST-2 rows and the real teacher. The CUDA cases run
where torch sees a GPU (tests/test_gpu.py runs the tiny pipeline there)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import sst2_with_teacher_logits

from kdnas.device import CPU, Compute, resolve_compute
from kdnas.distillation.losses import build_loss
from kdnas.distillation.students import build_student
from kdnas.distillation.training import train_model
from kdnas.models.arch import Arch

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch here")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


def _params(device: str, precision: str = "auto") -> dict:
    return {"compute": {"device": device, "precision": precision}}


def test_auto_trains_on_the_gpu_when_torch_sees_one_else_on_the_cpu_in_fp32():
    compute = resolve_compute(_params("auto"))
    if torch.cuda.is_available():
        assert compute.device == torch.device("cuda", 0)
        assert compute.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    else:
        assert compute == CPU and compute.kind == "cpu/fp32"
    assert resolve_compute(_params("cpu")) == CPU
    assert resolve_compute(_params("cpu", "bf16")).kind == "cpu/bf16"
    assert resolve_compute({}) == resolve_compute(_params("auto"))  # no block: auto/auto


def test_search_workers_take_the_visible_gpus_round_robin_unless_one_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    devices = [resolve_compute(_params("auto"), worker_index=i).device for i in range(3)]
    assert devices == [torch.device("cuda", 0), torch.device("cuda", 1), torch.device("cuda", 0)]
    assert {resolve_compute(_params("cuda:1"), worker_index=i).device for i in range(3)} == {torch.device("cuda", 1)}
    assert resolve_compute(_params("cuda")).kind == "cuda/fp16"  # no bf16 on this (pretend) GPU: fp16 + scaling


@pytest.fixture(scope="module")
def sst2():
    _, teacher, data = sst2_with_teacher_logits(32, 24)
    return teacher, data


LOSSES = {
    "logit_kd + label": [{"name": "logit_kd", "weight": 1.0}, {"name": "label", "weight": 0.1}],
    "hidden": [{"name": "hidden", "weight": 1.0}],
    "attention": [{"name": "attention", "weight": 1.0}],
    "attention_relation": [{"name": "attention_relation", "weight": 1.0}],
    "emd": [{"name": "emd", "weight": 1.0, "kwargs": {"attention": True}}],
}


def _distil(sst2, losses: list[dict], compute: Compute, seen_dtypes: set | None = None):
    teacher, data = sst2
    teacher = copy.deepcopy(teacher)  # placed on the device by training
    student = build_student(teacher, Arch.from_key("L2-H384-A12-F768"), init="inherit", seed=5)
    torch.manual_seed(5)
    loss = build_loss(losses, temperature=1.0, regression=False, student_config=student.config,
                      teacher_config=teacher.config)
    if loss.needs_attentions:  # sdpa attention returns no maps
        teacher.config._attn_implementation = student.config._attn_implementation = "eager"
    if seen_dtypes is not None:
        student.bert.encoder.layer[0].intermediate.dense.register_forward_hook(
            lambda module, inputs, output: seen_dtypes.add(output.dtype))
    history = train_model(student, data, loss, epochs=1, lr=1e-3, batch_size=8, seed=5, teacher=teacher,
                          show_progress=False, compute=compute)
    return student, history


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("losses", list(LOSSES))
def test_a_bf16_autocast_step_trains_with_every_loss_close_to_fp32(sst2, device, losses):
    seen = set()
    bf16, bf16_history = _distil(sst2, LOSSES[losses], Compute(torch.device(device), "bf16"), seen)
    fp32, fp32_history = _distil(sst2, LOSSES[losses], Compute(torch.device(device), "fp32"))
    assert seen == {torch.bfloat16}  # the matmuls ran in bf16 ...
    assert {p.dtype for p in bf16.parameters()} == {torch.float32}  # ... on fp32 master weights
    assert {p.device.type for p in bf16.parameters()} == {device}
    moved = [name for name, p in bf16.named_parameters()
             if not torch.equal(p, dict(fp32.named_parameters())[name].to(p.device))]
    assert moved, "bf16 training must differ from fp32 somewhere: else autocast did nothing"
    ours, reference = bf16_history["epochs"][0]["loss"], fp32_history["epochs"][0]["loss"]
    assert np.isfinite(ours) and abs(ours - reference) <= 0.05 * abs(reference) + 1e-3, (ours, reference)
