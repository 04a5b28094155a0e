"""Which teacher heads, FFN neurons and hidden dimensions a student inherits: importance scores.

Two methods (``space.importance``):

* ``magnitude`` (no data, :func:`kdnas.distillation.students.magnitude_importance`): a head's score is the L1 norm of
  its slice of the attention output projection (how much it writes into the residual stream), an FFN
  neuron's the L1 norm of its output-projection column, a hidden dimension's the summed |gamma| of the
  embedding LayerNorm and the LayerNorms of the layers the student keeps.
* ``gradient`` (Michel et al., 2019, "Are Sixteen Heads Really Better than One?"; DynaBERT, Hou et al.,
  2020): a mask of ones multiplies each head's context output, each FFN neuron's activation and each
  hidden dimension of the residual stream (every LayerNorm output, one mask shared across layers, as the
  student slices the same dimensions everywhere); the score is the expected sensitivity of the task loss
  to that mask, ``sum over batches of |dL/dm|``, computed on the teacher with the proxy training rows
  and gold labels. For a neuron ``dL/dm = sum over tokens of activation x gradient``. As in Michel et
  al.'s code the absolute value is taken per batch, then summed (signs that cancel across batches do not
  hide an important unit). Computed once by the ``proxy`` stage and saved, so candidates never recompute it.

Scores: ``heads`` [layers, heads], ``ffn`` [layers, intermediate], ``hidden`` [hidden], indexed by teacher
layer, saved with safetensors (the method in the metadata) as ``importance.safetensors`` in the proxy folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kdnas.data.batching import Encoded, collate, length_grouped_batches
from kdnas.device import CPU, Compute
from kdnas.errors import KdnasError
from kdnas.io import atomic_path


def gradient_importance(teacher, data: Encoded, batch_size: int = 32, regression: bool = False,
                        compute: Compute = CPU) -> dict:
    """Gradient (mask-sensitivity) scores of heads, FFN neurons and hidden dimensions on ``data``, computed on
    ``compute``'s device and precision (returned on the CPU)."""
    cfg = teacher.config
    n_layers, n_heads, t_head = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    device = compute.device
    masks = {"heads": torch.ones(n_layers, n_heads, requires_grad=True, device=device),
             "ffn": torch.ones(n_layers, cfg.intermediate_size, requires_grad=True, device=device),
             "hidden": torch.ones(cfg.hidden_size, requires_grad=True, device=device)}
    bert = teacher.bert
    hooks = []

    def scale_first(mask_fn):
        def hook(module, inputs, output):
            if isinstance(output, tuple):
                return (output[0] * mask_fn(output[0]),) + tuple(output[1:])
            return output * mask_fn(output)
        return hook

    for t, layer in enumerate(bert.encoder.layer):
        hooks.append(layer.attention.self.register_forward_hook(
            scale_first(lambda x, t=t: masks["heads"][t].repeat_interleave(t_head))))
        hooks.append(layer.intermediate.register_forward_hook(scale_first(lambda x, t=t: masks["ffn"][t])))
        hooks.append(layer.attention.output.register_forward_hook(scale_first(lambda x: masks["hidden"])))
        hooks.append(layer.output.register_forward_hook(scale_first(lambda x: masks["hidden"])))
    hooks.append(bert.embeddings.register_forward_hook(scale_first(lambda x: masks["hidden"])))
    scores = {name: torch.zeros_like(mask) for name, mask in masks.items()}
    labels = torch.as_tensor(np.array(data.labels)).to(device)  # a copy: parquet-backed arrays are read-only
    compute.place(teacher)
    was_training = teacher.training
    teacher.eval()  # no dropout: the score of the model as it is
    trainable = [p for p in teacher.parameters() if p.requires_grad]
    for p in trainable:  # only the masks need gradients: autograd then keeps no weight-gradient work
        p.requires_grad_(False)
    try:
        for index in length_grouped_batches(data.lengths, batch_size, seed=None):
            with compute.autocast():
                logits = teacher(**compute.to_device(collate(data, index))).logits.float()
            target = labels[torch.as_tensor(index, device=device)]
            if regression:
                loss = torch.nn.functional.mse_loss(logits.view(-1), target.float().view(-1))
            else:
                loss = torch.nn.functional.cross_entropy(logits, target.long())
            grads = torch.autograd.grad(loss, list(masks.values()))
            for name, grad in zip(masks, grads):
                scores[name] += grad.abs()
    finally:
        for hook in hooks:
            hook.remove()
        for p in trainable:
            p.requires_grad_(True)
        teacher.train(was_training)
    return {**{name: s.detach().cpu() for name, s in scores.items()}, "method": "gradient"}


def save_importance(scores: dict, path: str | Path) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.contiguous().float() for k, v in scores.items() if k != "method"}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"method": scores["method"]})


def load_importance(path: str | Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        scores = {k: f.get_tensor(k) for k in f.keys()}
        scores["method"] = (f.metadata() or {}).get("method", "unknown")
    return scores


IMPORTANCE_FILE = "importance.safetensors"  # in the proxy folder


def inheritance_scores(params: dict, proxy_dir: str | Path) -> dict | None:
    """The scores students inherit by: None for ``magnitude`` (computed from the weights by build_student),
    else the gradient scores the proxy stage saved."""
    method = params["space"]["importance"]
    if method == "magnitude" or params["space"]["init"] != "inherit":
        return None
    path = Path(proxy_dir) / IMPORTANCE_FILE
    if not path.is_file():
        raise KdnasError(f"space.importance = {method!r} but {path} is missing; rerun the proxy stage")
    scores = load_importance(path)
    if scores["method"] != method:
        raise KdnasError(f"{path} holds {scores['method']} scores, params ask for {method}; rerun the proxy stage")
    return scores
