"""Random search: the baseline every strategy must beat."""
from __future__ import annotations

from kdnas.models.arch import Arch
from kdnas.search.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register(key="random")
class RandomSearch(Strategy):
    """Uniform over valid architectures, without repeats while unseen ones remain."""

    def ask(self, n: int) -> list[Arch]:
        seen = self.seen()
        unseen = [a for a in self.space.archs if a not in seen]
        pool = unseen if len(unseen) >= n else self.space.archs
        picks = self.rng.choice(len(pool), size=min(n, len(pool)), replace=False)
        return [pool[int(i)] for i in picks]
