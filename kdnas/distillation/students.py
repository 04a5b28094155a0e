"""Student construction: an architecture spec becomes a plain BERT model, random or inherited from the teacher.

Inheritance (``init: inherit``) follows DynaBERT's width/depth reduction. Which heads, neurons and hidden
dimensions are kept is decided by importance scores (``space.importance``, :mod:`kdnas.distillation.importance`):
weight magnitude by default (no data), or the gradient (mask-sensitivity) score of Michel et al. (2019) /
DynaBERT computed once on the proxy rows. With magnitude:

* layers: the architecture's ``layer_set`` when it names one; else student layer i takes teacher layer
  floor((i+1) * Lt / Ls) - 1 (uniform spacing that always keeps the last layer; 3 of 6 -> 1, 3, 5);
* attention heads: the heads whose slice of the attention output projection has the largest L1 norm
  (how much each head writes into the residual stream);
* head dimensions, when the student's head size is smaller: the dims with the largest
  |W_q| * |W_k| row norms (their contribution to attention scores);
* FFN neurons: largest L1 norm of the output projection's columns;
* hidden dimensions, when the hidden size shrinks: largest summed |gamma| over the kept LayerNorms,
  sliced consistently in embeddings, every matrix, pooler and classifier.

The result is a standard ``BertForSequenceClassification`` that saves and loads with plain transformers.
"""
from __future__ import annotations

import copy

import torch

from kdnas.errors import KdnasError
from kdnas.models.arch import Arch, layer_set_problems, uniform_layers


def student_config(teacher_config, arch: Arch):
    """The teacher's config with the student's dimensions."""
    config = copy.deepcopy(teacher_config)
    config.num_hidden_layers = arch.layers
    config.hidden_size = arch.hidden
    config.num_attention_heads = arch.heads
    config.intermediate_size = arch.ffn
    config.architectures = ["BertForSequenceClassification"]
    return config


def check_inheritable(arch: Arch, teacher_config) -> None:
    """Raises a one-line error when the teacher cannot provide ``arch``'s weights."""
    t_head = teacher_config.hidden_size // teacher_config.num_attention_heads
    problems = []
    if arch.layers > teacher_config.num_hidden_layers:
        problems.append(f"layers {arch.layers} > teacher's {teacher_config.num_hidden_layers}")
    if arch.hidden > teacher_config.hidden_size:
        problems.append(f"hidden {arch.hidden} > teacher's {teacher_config.hidden_size}")
    if arch.heads > teacher_config.num_attention_heads:
        problems.append(f"heads {arch.heads} > teacher's {teacher_config.num_attention_heads}")
    if arch.head_size > t_head:
        problems.append(f"head size {arch.head_size} > teacher's {t_head}")
    if arch.ffn > teacher_config.intermediate_size:
        problems.append(f"ffn {arch.ffn} > teacher's {teacher_config.intermediate_size}")
    problems += layer_set_problems(arch, teacher_config.num_hidden_layers)
    if problems:
        raise KdnasError(f"architecture {arch.key} cannot inherit from the teacher: {'; '.join(problems)}")


def teacher_layers(arch: Arch, num_teacher: int) -> list[int]:
    """The teacher layers ``arch`` inherits: its layer set, else the uniformly spaced ones."""
    return list(arch.layer_set) or uniform_layers(num_teacher, arch.layers)


def cpu_state(model) -> dict:
    """The model's tensors on the CPU (no copy there): a student inherits the same weights, chosen by the same
    scores, whichever device its teacher trains on."""
    return {key: value.detach().cpu() for key, value in model.state_dict().items()}


def magnitude_importance(teacher) -> dict:
    """Weight-magnitude scores of heads and FFN neurons (see module docstring); needs no data."""
    cfg, state = teacher.config, cpu_state(teacher)
    t_head = cfg.hidden_size // cfg.num_attention_heads
    heads, ffn = [], []
    for t in range(cfg.num_hidden_layers):
        prefix = f"bert.encoder.layer.{t}."
        out_proj = state[prefix + "attention.output.dense.weight"].abs()  # [H, heads*head]
        heads.append(out_proj.sum(0).view(cfg.num_attention_heads, t_head).sum(1))
        ffn.append(state[prefix + "output.dense.weight"].abs().sum(0))
    # no "hidden" entry: the magnitude score of a hidden dimension depends on which layers the student keeps
    return {"heads": torch.stack(heads), "ffn": torch.stack(ffn), "method": "magnitude"}


def hidden_magnitude(state: dict, layers: list[int]) -> torch.Tensor:
    """Summed |gamma| of the embedding LayerNorm and the kept layers' LayerNorms (magnitude hidden score)."""
    gammas = [state["bert.embeddings.LayerNorm.weight"].abs()]
    for t in layers:
        prefix = f"bert.encoder.layer.{t}."
        gammas.append(state[prefix + "attention.output.LayerNorm.weight"].abs())
        gammas.append(state[prefix + "output.LayerNorm.weight"].abs())
    return torch.stack(gammas).sum(0)


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the k largest scores, in their original order (keeps position structure)."""
    return torch.sort(torch.topk(scores, k).indices).values


def _select(teacher_state: dict, config, arch: Arch, layers: list[int], importance: dict) -> dict:
    """Index tensors for every sliced dimension of the teacher."""
    t_heads, t_hidden = config.num_attention_heads, config.hidden_size
    t_head = t_hidden // t_heads
    hidden_scores = importance.get("hidden")
    if hidden_scores is None:
        hidden_scores = hidden_magnitude(teacher_state, layers)
    selection = {"hidden": _top(hidden_scores, arch.hidden), "attn": [], "ffn": []}
    for t in layers:
        prefix = f"bert.encoder.layer.{t}."
        heads = _top(importance["heads"][t], arch.heads)
        q = teacher_state[prefix + "attention.self.query.weight"].abs().sum(1).view(t_heads, t_head)
        k = teacher_state[prefix + "attention.self.key.weight"].abs().sum(1).view(t_heads, t_head)
        dims = [h * t_head + _top((q[h] * k[h]), arch.head_size) for h in heads.tolist()]
        selection["attn"].append(torch.cat(dims))
        selection["ffn"].append(_top(importance["ffn"][t], arch.ffn))
    return selection


def _inherit_state(teacher_state: dict, config, arch: Arch, importance: dict) -> dict:
    layers = teacher_layers(arch, config.num_hidden_layers)
    sel = _select(teacher_state, config, arch, layers, importance)
    hid = sel["hidden"]
    state = {}

    def take(name, rows=None, cols=None):
        tensor = teacher_state[name]
        if rows is not None:
            tensor = tensor.index_select(0, rows)
        if cols is not None:
            tensor = tensor.index_select(1, cols)
        return tensor.clone()

    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        state[f"bert.embeddings.{name}.weight"] = take(f"bert.embeddings.{name}.weight", cols=hid)
    for part in ("weight", "bias"):
        state[f"bert.embeddings.LayerNorm.{part}"] = take(f"bert.embeddings.LayerNorm.{part}", rows=hid)
    for s, t in enumerate(layers):
        src, dst = f"bert.encoder.layer.{t}.", f"bert.encoder.layer.{s}."
        attn, ffn = sel["attn"][s], sel["ffn"][s]
        for proj in ("query", "key", "value"):
            state[dst + f"attention.self.{proj}.weight"] = take(src + f"attention.self.{proj}.weight", attn, hid)
            state[dst + f"attention.self.{proj}.bias"] = take(src + f"attention.self.{proj}.bias", attn)
        state[dst + "attention.output.dense.weight"] = take(src + "attention.output.dense.weight", hid, attn)
        state[dst + "attention.output.dense.bias"] = take(src + "attention.output.dense.bias", hid)
        state[dst + "intermediate.dense.weight"] = take(src + "intermediate.dense.weight", ffn, hid)
        state[dst + "intermediate.dense.bias"] = take(src + "intermediate.dense.bias", ffn)
        state[dst + "output.dense.weight"] = take(src + "output.dense.weight", hid, ffn)
        state[dst + "output.dense.bias"] = take(src + "output.dense.bias", hid)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            for part in ("weight", "bias"):
                state[dst + f"{norm}.{part}"] = take(src + f"{norm}.{part}", rows=hid)
    if "bert.pooler.dense.weight" in teacher_state:
        state["bert.pooler.dense.weight"] = take("bert.pooler.dense.weight", hid, hid)
        state["bert.pooler.dense.bias"] = take("bert.pooler.dense.bias", hid)
    state["classifier.weight"] = take("classifier.weight", cols=hid)
    state["classifier.bias"] = take("classifier.bias")
    return state


def build_student(teacher, arch: Arch, init: str = "inherit", seed: int = 0, importance: dict | None = None):
    """Builds a student for ``arch`` in the teacher's family.

    Args:
        teacher: a fine-tuned ``BertForSequenceClassification``.
        arch: the student's dimensions.
        init: ``inherit`` (slice the teacher, see module docstring) or ``random``.
        seed: seeds the random initialisation (random init, and any weight inheritance leaves untouched).
        importance: scores from :mod:`kdnas.distillation.importance` (``heads``, ``ffn``, optional ``hidden``); None =
            weight magnitude.

    Returns:
        A ``BertForSequenceClassification`` in train mode.
    """
    from transformers import BertForSequenceClassification

    if arch.hidden % arch.heads:
        raise KdnasError(f"architecture {arch.key}: hidden {arch.hidden} is not divisible by heads {arch.heads}")
    config = student_config(teacher.config, arch)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        student = BertForSequenceClassification(config)
    finally:
        torch.random.set_rng_state(generator_state)
    if init == "inherit":
        check_inheritable(arch, teacher.config)
        state = _inherit_state(cpu_state(teacher), teacher.config, arch,
                               importance if importance is not None else magnitude_importance(teacher))
        missing, unexpected = student.load_state_dict(state, strict=False)
        leftover = [m for m in missing if "position_ids" not in m]
        if leftover or unexpected:
            raise KdnasError(f"inheritance left weights unset: {leftover[:3]} unexpected: {unexpected[:3]}")
    elif init != "random":
        raise KdnasError(f"space.init = {init!r} is invalid: use 'inherit' or 'random'")
    elif arch.layer_set:
        raise KdnasError(f"architecture {arch.key}: a layer set needs space.init = inherit (random init inherits no layers)")
    student.train()
    return student
