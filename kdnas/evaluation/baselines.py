"""The students a practitioner picks without search: the teacher's layers dropped uniformly, at full width,
and the same depths with the feed-forward layers trimmed. Each is built from the teacher the way the searched
student is (``space.init``: uniformly spaced layers that keep the last, FFN neurons by importance; see
:mod:`kdnas.distillation.students`) and distilled with exactly its recipe (:func:`kdnas.distillation.recipe.distill_arch`),
so :mod:`kdnas.evaluation.front` can compare the two at equal latency.

``baselines.keep_every: [2, 3]`` keeps every other and every third layer (6 -> 3 and 2 layers);
``baselines.ffn_fraction: [1.0, 0.25]`` gives each depth its teacher's FFN and a quarter of it.
"""
from __future__ import annotations

from pathlib import Path

from kdnas.errors import KdnasError
from kdnas.models.arch import Arch, uniform_layers


def _family_order(arch: Arch) -> tuple[int, int]:
    return -arch.layers, -arch.ffn  # deepest and widest first


def hand_crafted_archs(teacher_config, cfg: dict) -> list[Arch]:
    """The family's architectures for this teacher, deepest and widest first, without repeats.

    Args:
        teacher_config: the teacher's ``config`` (attributes) or its config.json (a dict).
        cfg: the ``baselines`` params block.
    """
    get = teacher_config.get if isinstance(teacher_config, dict) else lambda key: getattr(teacher_config, key)
    layers, hidden = get("num_hidden_layers"), get("hidden_size")
    heads, ffn = get("num_attention_heads"), get("intermediate_size")
    archs = []
    for every in cfg["keep_every"]:
        if every > layers:
            raise KdnasError(f"baselines.keep_every = {every}: the teacher has only {layers} layers")
        for fraction in cfg["ffn_fraction"]:
            arch = Arch(layers // every, hidden, heads, max(1, round(ffn * fraction)))
            if arch not in archs:
                archs.append(arch)
    return sorted(archs, key=_family_order)


def describe(arch: Arch, teacher_config) -> dict:
    """What a reader needs to rebuild a hand-crafted student: its teacher layers and FFN share."""
    return {"layers_kept": uniform_layers(teacher_config.num_hidden_layers, arch.layers),
            "ffn_fraction": arch.ffn / teacher_config.intermediate_size}


def saved_baselines(folder) -> dict[str, str]:
    """architecture key -> model folder, for the hand-crafted students the baselines stage wrote."""
    archs = sorted((Arch.from_key(p.name) for p in Path(folder).iterdir() if p.is_dir()), key=_family_order)
    return {arch.key: str(Path(folder) / arch.key) for arch in archs}
