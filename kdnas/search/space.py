"""The student search space: the product of per-dimension choices, less invalid combinations."""
from __future__ import annotations

import copy
import itertools

import numpy as np

from kdnas.errors import KdnasError
from kdnas.models.arch import Arch


class SearchSpace:
    """Every valid ``Arch`` from lists of layers, hidden sizes, heads and FFN sizes.

    A combination is valid when hidden is divisible by heads and, if ``max_head_size`` is set (inheritance
    from a teacher), the head size does not exceed it.
    """

    DIMS = ("layers", "hidden", "heads", "ffn")

    def __init__(self, layers, hidden, heads, ffn, max_head_size: int | None = None):
        self.choices = {"layers": sorted(set(layers)), "hidden": sorted(set(hidden)),
                        "heads": sorted(set(heads)), "ffn": sorted(set(ffn))}
        self.max_head_size = max_head_size
        self.allowed: frozenset[Arch] | None = None  # set by restrict(): a prescreened subset
        self.archs = [Arch(*combo) for combo in itertools.product(*(self.choices[d] for d in self.DIMS))
                      if self.is_valid(Arch(*combo))]
        if not self.archs:
            limit = f" and head size <= {max_head_size}" if max_head_size else ""
            raise KdnasError(f"params: space has no valid architecture: no hidden size in {self.choices['hidden']} "
                             f"is divisible by a head count in {self.choices['heads']}{limit}")

    @classmethod
    def from_params(cls, space: dict, max_head_size: int | None = None) -> "SearchSpace":
        return cls(space["layers"], space["hidden"], space["heads"], space["ffn"], max_head_size)

    def restrict(self, keep) -> "SearchSpace":
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
        if any(getattr(arch, d) not in self.choices[d] for d in self.DIMS):
            return False
        if arch.hidden % arch.heads:
            return False
        return self.max_head_size is None or arch.head_size <= self.max_head_size

    def __len__(self) -> int:
        return len(self.archs)

    def sample(self, rng: np.random.Generator) -> Arch:
        """A uniformly random valid architecture."""
        return self.archs[int(rng.integers(len(self.archs)))]

    def encode(self, arch: Arch) -> np.ndarray:
        """Each dimension's choice index scaled to [0, 1] (for surrogates and predictors)."""
        out = []
        for d in self.DIMS:
            options = self.choices[d]
            out.append(options.index(getattr(arch, d)) / max(1, len(options) - 1))
        return np.array(out, dtype=np.float64)

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Changes one dimension to a neighbouring choice, retrying until the result is valid."""
        for _ in range(100):
            dim = self.DIMS[int(rng.integers(len(self.DIMS)))]
            options = self.choices[dim]
            pos = options.index(getattr(arch, dim)) + int(rng.choice([-1, 1]))
            if 0 <= pos < len(options):
                candidate = Arch(**{**arch.to_dict(), dim: options[pos]})
                if self.is_valid(candidate):
                    return candidate
        return self.sample(rng)
