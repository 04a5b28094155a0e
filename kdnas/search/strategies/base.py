"""Search strategies behind one interface: ask for candidates, tell results, save and restore state.

Every strategy is deterministic under its seed, proposes only valid architectures, never proposes one
already told (or already handed out and not yet told) while unseen ones remain, and round-trips its whole
state through JSON (``state_dict``/``load_state_dict``) so that a resumed search proposes exactly what the
uninterrupted one would have.
"""
from __future__ import annotations

import numpy as np

from kdnas.models.arch import Arch
from kdnas.registry import Registry
from kdnas.search.space import SearchSpace

STRATEGIES = Registry("search strategy")


def _keys(archs) -> list[str]:
    return [a.key for a in archs]


def _archs(keys) -> list[Arch]:
    return [Arch.from_key(k) for k in keys]


class Strategy:
    """Proposes architectures and learns from their rewards.

    Subclasses implement ``ask``; ``tell`` records observations; ``state_dict``/``load_state_dict``
    let a stopped search resume exactly where it was. ``pending`` holds proposals handed out by ``ask`` and
    not yet told, so that several ``ask`` calls before the ``tell`` calls do not repeat each other.
    """

    def __init__(self, space: SearchSpace, seed: int):
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.observations: list[tuple[Arch, float]] = []
        self.pending: list[Arch] = []
        self._encoded = np.stack([space.encode(a) for a in space.archs])
        self._row = {a: i for i, a in enumerate(space.archs)}

    def ask(self, n: int) -> list[Arch]:
        raise NotImplementedError

    def tell(self, arch: Arch, reward: float) -> None:
        self.observations.append((arch, float(reward)))
        if arch in self.pending:
            self.pending.remove(arch)

    def seen(self) -> set[Arch]:
        return {arch for arch, _ in self.observations}

    def encode(self, arch: Arch) -> np.ndarray:
        """The space's [0, 1]^4 encoding (cached for the space's own architectures)."""
        row = self._row.get(arch)
        return self._encoded[row].copy() if row is not None else self.space.encode(arch)

    def unseen(self) -> list[Arch]:
        """Valid architectures neither told nor pending, in the space's order.

        When none remain, falls back to those not pending, then to the whole space (repeats are then
        unavoidable).
        """
        seen, pending = self.seen(), set(self.pending)
        fresh = [a for a in self.space.archs if a not in seen and a not in pending]
        if fresh:
            return fresh
        return [a for a in self.space.archs if a not in pending] or list(self.space.archs)

    def random_unseen(self) -> Arch:
        pool = self.unseen()
        return pool[int(self.rng.integers(len(pool)))]

    def best(self, observations=None) -> tuple[Arch, float] | None:
        """The highest-reward observation (the earliest among ties), or None before any."""
        observations = self.observations if observations is None else observations
        best = None
        for arch, value in observations:
            if best is None or value > best[1]:
                best = (arch, value)
        return best

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state,
                "observations": [[a.key, r] for a, r in self.observations],
                "pending": _keys(self.pending)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.observations = [(Arch.from_key(k), float(r)) for k, r in state["observations"]]
        self.pending = _archs(state.get("pending", []))
