"""ONNX export of a sequence classifier and an ONNX Runtime model the latency harness can time.

Uses PyTorch's TorchScript-based exporter (``dynamo=False``: no extra dependencies, dynamic batch and
sequence axes) and ONNX Runtime's CPU provider. Both packages are the optional ``onnx`` extra.

``fusion: bert`` (``export.fusion``) rewrites the exported graph with ONNX Runtime's transformer optimizer
(``onnxruntime.transformers.optimizer``): one ``Attention`` node per layer, ``EmbedLayerNormalization``,
``SkipLayerNormalization`` and ``BiasGelu``, the form ONNX Runtime runs fastest and quantises to
``QAttention``. The fused file needs ONNX Runtime (its ``com.microsoft`` operators); ``none`` keeps the plain,
portable graph.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from kdnas.errors import KdnasError

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
FUSIONS = ("bert", "none")


@contextmanager
def quiet_root_logger():
    """ONNX Runtime's quantiser and transformer optimizer log every node and pass, on the root logger or on loggers
    named after their modules (imported top-level): keep the stage log readable (errors still show)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def export_onnx(model, path: str | Path, fusion: str = "none", opset: int = 17) -> Path:
    """Writes ``model`` as ONNX with dynamic batch and sequence axes, its graph fused as ``fusion`` says
    (:data:`FUSIONS`); returns the path."""
    if fusion not in FUSIONS:
        raise KdnasError(f"export.fusion = {fusion!r} is invalid: use one of {', '.join(FUSIONS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.ones((2, 8), dtype=torch.long)
    model.eval()
    # the explicit attention (matmul, mask, softmax) is the pattern the fusion recognises; PyTorch's SDPA kernel
    # exports as a graph it does not, and exports no faster
    attention = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        torch.onnx.export(model, (example, torch.ones_like(example), torch.zeros_like(example)), str(path),
                          input_names=list(INPUTS), output_names=["logits"],
                          dynamic_axes={name: {0: "batch", 1: "sequence"} for name in INPUTS}, opset_version=opset,
                          dynamo=False)
    finally:
        model.set_attn_implementation(attention)
    if fusion == "bert":
        fuse_bert(path, model.config)
    return path


def fuse_bert(path: Path, config) -> None:
    """Rewrites ``path`` in place with ONNX Runtime's BERT fusions (attention over the full 0/1 mask, so any
    padding side works); refuses a graph where some layer's attention did not fuse."""
    from onnxruntime.transformers.fusion_options import (
        AttentionMaskFormat,
        FusionOptions,
    )
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.attention_mask_format = AttentionMaskFormat.AttentionMask
    with quiet_root_logger():  # each step logs (statistics and saving included)
        fused = optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                               hidden_size=config.hidden_size, optimization_options=options)
        attention = fused.get_fused_operator_statistics().get("Attention", 0)
        if attention != config.num_hidden_layers:
            raise KdnasError(f"export.fusion = bert fused the attention of {attention} of {config.num_hidden_layers} "
                             f"layers in {path.name}: set export.fusion: none for this model")
        fused.save_model_to_file(str(path))


class OrtModel:
    """An ONNX Runtime session behind the small interface ``measure_interleaved`` uses."""

    def __init__(self, path: str | Path, vocab_size: int, threads: int):
        from kdnas.deploy.ort_session import session

        self.session = session(path, threads)
        self.config = type("Config", (), {"vocab_size": vocab_size})()

    def eval(self):
        return self

    def to(self, device):
        if device != "cpu":
            raise KdnasError("the onnxruntime latency backend measures on the CPU only")
        return self

    def __call__(self, **inputs) -> np.ndarray:
        feed = {name: inputs[name].numpy() for name in INPUTS}
        return self.session.run(None, feed)[0]


def max_abs_difference(model, ort_model: OrtModel, inputs: dict[str, torch.Tensor],
                       device: torch.device | str = "cpu") -> float:
    """Largest absolute logit difference between PyTorch (run in fp32 on ``device``; the model is returned to
    the CPU afterwards) and ONNX Runtime on ``inputs``."""
    with torch.inference_mode():
        expected = model.to(device)(**{k: v.to(device) for k, v in inputs.items()}).logits.float().cpu().numpy()
    model.to("cpu")
    return float(np.abs(ort_model(**inputs) - expected).max())
