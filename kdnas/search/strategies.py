"""Search strategies behind one interface: ask for candidates, tell results, save and restore state."""
from __future__ import annotations

import numpy as np

from kdnas.arch import Arch
from kdnas.search.registry import STRATEGIES
from kdnas.search.space import SearchSpace


class Strategy:
    """Proposes architectures and learns from their rewards.

    Subclasses implement ``ask``; ``tell`` records observations; ``state_dict``/``load_state_dict``
    let a stopped search resume exactly where it was.
    """

    def __init__(self, space: SearchSpace, seed: int):
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.observations: list[tuple[Arch, float]] = []

    def ask(self, n: int) -> list[Arch]:
        raise NotImplementedError

    def tell(self, arch: Arch, reward: float) -> None:
        self.observations.append((arch, float(reward)))

    def seen(self) -> set[Arch]:
        return {arch for arch, _ in self.observations}

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state,
                "observations": [[a.key, r] for a, r in self.observations]}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.observations = [(Arch.from_key(k), r) for k, r in state["observations"]]


@STRATEGIES.register(key="random")
class RandomSearch(Strategy):
    """Uniform over valid architectures, without repeats while unseen ones remain."""

    def ask(self, n: int) -> list[Arch]:
        seen = self.seen()
        unseen = [a for a in self.space.archs if a not in seen]
        pool = unseen if len(unseen) >= n else self.space.archs
        picks = self.rng.choice(len(pool), size=min(n, len(pool)), replace=False)
        return [pool[int(i)] for i in picks]
