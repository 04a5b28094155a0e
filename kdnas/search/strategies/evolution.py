"""Regularized (aging) evolution (Real et al. 2019)."""
from __future__ import annotations

from kdnas.models.arch import Arch
from kdnas.search.space import SearchSpace
from kdnas.search.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register(key="evolution")
class RegularizedEvolution(Strategy):
    """Regularized (aging) evolution: Real et al. 2019, "Regularized Evolution for Image Classifier
    Architecture Search" (AAAI).

    The first ``population_size`` proposals are uniformly random. After that each proposal mutates (one
    dimension to a neighbouring choice, ``SearchSpace.mutate``) the best of ``sample_size`` population
    members drawn without replacement. Every told architecture joins the population and the oldest member
    leaves once it holds ``population_size``: members die of age, not of low reward.

    Args:
        space: the search space.
        seed: seed of every random choice.
        population_size: members kept alive (and random proposals before the first tournament).
        sample_size: tournament size.
        mutation_retries: mutations tried to find an unseen child before falling back to a random unseen
            architecture.
    """

    def __init__(self, space: SearchSpace, seed: int, population_size: int = 8, sample_size: int = 3,
                 mutation_retries: int = 10):
        super().__init__(space, seed)
        self.population_size, self.sample_size = int(population_size), int(sample_size)
        self.mutation_retries = int(mutation_retries)
        self.population: list[tuple[Arch, float]] = []  # oldest first
        self.proposed = 0

    def ask(self, n: int) -> list[Arch]:
        out = []
        for _ in range(n):
            arch = self._propose_one()
            self.pending.append(arch)
            out.append(arch)
        return out

    def _propose_one(self) -> Arch:
        self.proposed += 1
        if self.proposed <= self.population_size or not self.population:
            return self.random_unseen()
        size = min(self.sample_size, len(self.population))
        picks = self.rng.choice(len(self.population), size=size, replace=False)
        parent = max((self.population[int(i)] for i in picks), key=lambda member: member[1])[0]
        taken = self.seen() | set(self.pending)
        for _ in range(self.mutation_retries):
            child = self.space.mutate(parent, self.rng)
            if child not in taken and self.space.is_valid(child):
                return child
        return self.random_unseen()

    def tell(self, arch: Arch, reward: float) -> None:
        super().tell(arch, reward)
        self.population.append((arch, float(reward)))
        if len(self.population) > self.population_size:
            self.population.pop(0)  # aging: the oldest dies

    def state_dict(self) -> dict:
        return {**super().state_dict(), "population": [[a.key, r] for a, r in self.population],
                "proposed": self.proposed}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.population = [(Arch.from_key(k), float(r)) for k, r in state["population"]]
        self.proposed = int(state["proposed"])
