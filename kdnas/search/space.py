"""The student search space: the product of per-dimension choices, less invalid combinations."""
from __future__ import annotations

import copy
import itertools

import numpy as np

from kdnas.errors import KdnasError
from kdnas.models.arch import (
    LAYER_PATTERNS,
    Arch,
    layer_set_problems,
    with_layer_pattern,
)


class SearchSpace:
    """Every valid ``Arch`` from lists of layers, hidden sizes, heads, FFN sizes and layer patterns.

    A combination is valid when hidden is divisible by heads and, if ``max_head_size`` is set (inheritance
    from a teacher), the head size does not exceed it. ``layer_patterns`` (names in
    :data:`kdnas.models.arch.LAYER_PATTERNS`) choose which teacher layers a student inherits; with more than
    one they are a fifth dimension, ``layer_pattern``, whose choices change weights but not shapes. Two
    patterns that give a depth the same layers give one architecture.
    """

    SHAPE_DIMS = ("layers", "hidden", "heads", "ffn")

    def __init__(self, layers, hidden, heads, ffn, max_head_size: int | None = None,
                 layer_patterns=("uniform",), teacher_layers: int | None = None):
        self.choices = {"layers": sorted(set(layers)), "hidden": sorted(set(hidden)),
                        "heads": sorted(set(heads)), "ffn": sorted(set(ffn)),
                        "layer_pattern": list(dict.fromkeys(layer_patterns))}
        unknown = [name for name in self.choices["layer_pattern"] if name not in LAYER_PATTERNS]
        if unknown:
            raise KdnasError(f"params: space.layer_patterns: unknown pattern {unknown[0]!r} "
                             f"(known: {', '.join(LAYER_PATTERNS)})")
        if self.choices["layer_pattern"] != ["uniform"] and teacher_layers is None:
            raise KdnasError("params: space.layer_patterns other than uniform need space.init: inherit")
        # a dimension with one choice is no dimension: encodings (and so every strategy) stay four-dimensional
        self.dims = self.SHAPE_DIMS + (("layer_pattern",) if len(self.choices["layer_pattern"]) > 1 else ())
        self.max_head_size, self.teacher_layers = max_head_size, teacher_layers
        self.allowed: frozenset[Arch] | None = None  # set by restrict(): a prescreened subset
        self._coords: dict[Arch, tuple] = {}  # arch -> its choice along each dimension (the first pattern wins)
        for combo in itertools.product(*(self.choices[d] for d in self.SHAPE_DIMS + ("layer_pattern",))):
            arch = self._arch(dict(zip(self.SHAPE_DIMS + ("layer_pattern",), combo)))
            if arch not in self._coords and self._is_buildable(arch):
                self._coords[arch] = combo[: len(self.dims)]
        self.archs = list(self._coords)
        if not self.archs:
            limit = f" and head size <= {max_head_size}" if max_head_size else ""
            raise KdnasError(f"params: space has no valid architecture: no hidden size in {self.choices['hidden']} "
                             f"is divisible by a head count in {self.choices['heads']}{limit}")

    @classmethod
    def from_params(cls, space: dict, max_head_size: int | None = None,
                    teacher_layers: int | None = None) -> SearchSpace:
        """The space of a ``space`` params block. ``teacher_layers`` (the teacher's depth) resolves layer
        patterns; None leaves them out (the latency profile, whose timings do not depend on them)."""
        patterns = space.get("layer_patterns", ["uniform"]) if teacher_layers is not None else ["uniform"]
        return cls(space["layers"], space["hidden"], space["heads"], space["ffn"], max_head_size,
                   layer_patterns=patterns, teacher_layers=teacher_layers)

    def _arch(self, coords: dict) -> Arch:
        shape = Arch(*(coords[d] for d in self.SHAPE_DIMS))
        pattern = coords.get("layer_pattern", self.choices["layer_pattern"][0])
        return shape if pattern == "uniform" else with_layer_pattern(shape, pattern, self.teacher_layers)

    def _is_buildable(self, arch: Arch) -> bool:
        if arch.hidden % arch.heads:
            return False
        if layer_set_problems(arch, self.teacher_layers):
            return False  # a pattern asked for more layers than the teacher has
        return self.max_head_size is None or arch.head_size <= self.max_head_size

    def coords(self, arch: Arch) -> dict:
        """The architecture's choice along each dimension."""
        return dict(zip(self.dims, self._coords[arch]))

    def restrict(self, keep) -> SearchSpace:
        """A copy holding only the architectures for which ``keep(arch)`` is true.

        Choices (and so encodings) are unchanged, so surrogates see the same coordinates; ``mutate`` and
        ``is_valid`` stay inside the subset.
        """
        subset = copy.copy(self)
        subset.archs = [a for a in self.archs if keep(a)]
        subset.allowed = frozenset(subset.archs)
        return subset

    def is_valid(self, arch: Arch) -> bool:
        if self.allowed is not None:
            return arch in self.allowed
        return arch in self._coords

    def __len__(self) -> int:
        return len(self.archs)

    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly random valid architecture."""
        return self.archs[int(rng.integers(len(self.archs)))]

    def encode(self, arch: Arch) -> np.ndarray:
        """Each dimension's choice index scaled to [0, 1] (for surrogates and predictors)."""
        coords = self.coords(arch)
        return np.array([self.choices[d].index(coords[d]) / max(1, len(self.choices[d]) - 1) for d in self.dims],
                        dtype=np.float64)

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Changes one dimension to a neighbouring choice, retrying until the result is valid."""
        for _ in range(100):
            dim = self.dims[int(rng.integers(len(self.dims)))]
            options = self.choices[dim]
            coords = self.coords(arch)
            pos = options.index(coords[dim]) + int(rng.choice([-1, 1]))
            if 0 <= pos < len(options):
                candidate = self._arch({**coords, dim: options[pos]})
                if self.is_valid(candidate):
                    return candidate
        return self.sample(rng)
