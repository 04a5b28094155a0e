"""Search strategies behind one interface: ask for candidates, tell results, save and restore state.

Every strategy is deterministic under its seed, proposes only valid architectures, never proposes one
already told (or already handed out and not yet told) while unseen ones remain, and round-trips its whole
state through JSON (``state_dict``/``load_state_dict``) so that a resumed search proposes exactly what the
uninterrupted one would have.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from kdnas.arch import Arch
from kdnas.search.registry import STRATEGIES
from kdnas.search.space import SearchSpace


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


@STRATEGIES.register(key="random")
class RandomSearch(Strategy):
    """Uniform over valid architectures, without repeats while unseen ones remain."""

    def ask(self, n: int) -> list[Arch]:
        seen = self.seen()
        unseen = [a for a in self.space.archs if a not in seen]
        pool = unseen if len(unseen) >= n else self.space.archs
        picks = self.rng.choice(len(pool), size=min(n, len(pool)), replace=False)
        return [pool[int(i)] for i in picks]


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


@STRATEGIES.register(key="trbo")
class TrustRegionBO(Strategy):
    """Trust-region Bayesian optimisation over encoded architectures.

    TuRBO (Eriksson et al. 2019, "Scalable Global Optimization via Local Bayesian Optimization", NeurIPS)
    as used for architecture search by TRADE (Kim et al. 2022). A Gaussian process (Matern 5/2 with
    per-dimension length scales plus a white-noise kernel, ``normalize_y``) is fitted to every observation
    in [0, 1]^4. After ``n_init`` random proposals, ``n_candidates`` points are drawn uniformly in a
    hypercube of side ``L`` centred on the best point of the current region, each is snapped to its nearest
    valid unseen architecture (nearest by encoding) and the one with the
    highest expected improvement (or a Thompson sample) is proposed. ``success_tolerance`` consecutive
    improvements double ``L`` (up to ``length_max``), ``failure_tolerance`` consecutive failures halve it;
    once ``L < length_min`` the region restarts with side ``length_init`` around a uniformly random point.

    Args:
        space: the search space.
        seed: seed of every random choice (candidates, GP optimiser restarts, Thompson samples, restarts).
        n_init: random proposals before the GP is used.
        length_init: initial side of the trust region (L0).
        length_min: a side below this restarts the region.
        length_max: the largest side.
        success_tolerance: consecutive improvements that double the side.
        failure_tolerance: consecutive failures that halve the side.
        n_candidates: points sampled in the region per proposal.
        acquisition: ``"ei"`` (expected improvement) or ``"thompson"``.
        xi: expected-improvement margin, in reward units.
        gp_restarts: restarts of the GP hyper-parameter optimiser.
    """

    def __init__(self, space: SearchSpace, seed: int, n_init: int = 4, length_init: float = 0.8,
                 length_min: float = 0.1, length_max: float = 1.6, success_tolerance: int = 2,
                 failure_tolerance: int = 3, n_candidates: int = 256, acquisition: str = "ei", xi: float = 0.0,
                 gp_restarts: int = 2):
        super().__init__(space, seed)
        if acquisition not in ("ei", "thompson"):
            raise ValueError(f"trbo: acquisition must be 'ei' or 'thompson', not {acquisition!r}")
        self.n_init, self.n_candidates, self.acquisition = int(n_init), int(n_candidates), acquisition
        self.length_init, self.length_min, self.length_max = float(length_init), float(length_min), float(length_max)
        self.success_tolerance, self.failure_tolerance = int(success_tolerance), int(failure_tolerance)
        self.xi, self.gp_restarts = float(xi), int(gp_restarts)
        self.length = self.length_init
        self.successes = self.failures = 0
        self.region_start = 0  # index of the first observation of the current trust region
        self.restart_center: list[float] | None = None
        self.restarts = 0
        self.proposed = 0

    def ask(self, n: int) -> list[Arch]:
        out = []
        for _ in range(n):
            self.proposed += 1
            use_gp = self.proposed > self.n_init and len(self.observations) >= 2
            arch = self._propose_bo() if use_gp else self.random_unseen()
            self.pending.append(arch)
            out.append(arch)
        return out

    def center(self) -> np.ndarray:
        """The region's best observation, or the restart point before the region has any."""
        best = self.best(self.observations[self.region_start:])
        if best is not None:
            return self.encode(best[0])
        if self.restart_center is not None:
            return np.asarray(self.restart_center)
        best = self.best()
        return self.encode(best[0]) if best else np.full(len(SearchSpace.DIMS), 0.5)

    def _fit_gp(self):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        x = np.stack([self.encode(a) for a, _ in self.observations])
        y = np.array([r for _, r in self.observations])
        kernel = (ConstantKernel(1.0, (1e-3, 1e3))
                  * Matern(length_scale=np.full(x.shape[1], 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5)
                  + WhiteKernel(1e-3, (1e-6, 1e-1)))
        gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, n_restarts_optimizer=self.gp_restarts,
                                      random_state=int(self.rng.integers(2**31 - 1)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(x, y)
        return gp, float(y.max())

    def _propose_bo(self) -> Arch:
        from scipy.stats import norm

        gp, best_y = self._fit_gp()
        center = self.center()
        lower = np.clip(center - self.length / 2, 0.0, 1.0)
        upper = np.clip(center + self.length / 2, 0.0, 1.0)
        points = lower + (upper - lower) * self.rng.random((self.n_candidates, len(center)))
        # Snap each continuous point to its nearest unseen architecture; the acquisition is then scored on
        # the architectures themselves (deduplicated, in space order, so ties break deterministically).
        pool = self.unseen()
        encoded = np.stack([self.encode(a) for a in pool])
        nearest = np.unique(((points[:, None, :] - encoded[None]) ** 2).sum(-1).argmin(1))
        candidates = encoded[nearest]
        if self.acquisition == "thompson":
            score = gp.sample_y(candidates, random_state=int(self.rng.integers(2**31 - 1)))[:, 0]
        else:
            mu, sigma = gp.predict(candidates, return_std=True)
            sigma = np.maximum(sigma, 1e-12)
            z = (mu - best_y - self.xi) / sigma
            score = (mu - best_y - self.xi) * norm.cdf(z) + sigma * norm.pdf(z)
        return pool[int(nearest[int(np.argmax(score))])]

    def tell(self, arch: Arch, reward: float) -> None:
        region_best = self.best(self.observations[self.region_start:])
        super().tell(arch, reward)
        if len(self.observations) <= self.n_init:
            return  # the initial design does not move the region
        # TuRBO's improvement test: better than the region's best by a small relative margin.
        improved = region_best is None or reward > region_best[1] + 1e-3 * abs(region_best[1])
        self.successes, self.failures = (self.successes + 1, 0) if improved else (0, self.failures + 1)
        if self.successes >= self.success_tolerance:
            self.length, self.successes = min(2.0 * self.length, self.length_max), 0
        elif self.failures >= self.failure_tolerance:
            self.length, self.failures = self.length / 2.0, 0
        if self.length < self.length_min:
            self.length, self.successes, self.failures = self.length_init, 0, 0
            self.region_start = len(self.observations)
            self.restart_center = self.rng.random(len(SearchSpace.DIMS)).tolist()
            self.restarts += 1

    def state_dict(self) -> dict:
        return {**super().state_dict(), "length": self.length, "successes": self.successes,
                "failures": self.failures, "region_start": self.region_start,
                "restart_center": self.restart_center, "restarts": self.restarts, "proposed": self.proposed}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.length = float(state["length"])
        self.successes, self.failures = int(state["successes"]), int(state["failures"])
        self.region_start, self.restarts = int(state["region_start"]), int(state["restarts"])
        self.restart_center = state["restart_center"]
        self.proposed = int(state["proposed"])


@STRATEGIES.register(key="kdnas")
class KDNASSearch(Strategy):
    """KD-NAS: Trivedi et al. 2023, "Neural Architecture Search for Effective Teacher-Student Knowledge
    Transfer in Language Models".

    Search runs in episodes of ``episode_size`` (E) proposals. Each episode samples ``pool_factor`` x E
    valid unseen architectures, ranks them with the controller (``RewardPredictor``: an LSTM over
    [previous episode's best, global best, candidate] encodings), and proposes the best
    round((1 - eps) x E) (rounded half up, best first) followed by the rest chosen uniformly from the
    remaining pool. When E proposals of the episode have been told, the controller's mean absolute error
    on them (predicted before retraining) is appended to ``prediction_errors`` and it is retrained on all
    observations, each in the context it was ranked in and again in the context of the next episode.
    Exploration decays per episode: eps = max(eps_min, eps0 * eps_decay ** episode).

    ``ask(n)`` hands out the next n proposals of the current plan whatever the call pattern (``ask(1)``
    per trial or ``ask(E)`` per episode give the same sequence). If it is asked for more than the current
    episode has left before that episode is told, the next episode is planned early with the controller as
    it stands.

    Args:
        space: the search space.
        seed: seed of the pool sampling, the random picks and the controller's initial weights.
        episode_size: proposals per episode (E).
        pool_factor: pool size as a multiple of E.
        eps0: initial share of random proposals.
        eps_decay: per-episode decay of eps.
        eps_min: floor of eps.
        hidden: controller LSTM hidden size.
        train_epochs: full-batch Adam steps per retraining.
        lr: Adam learning rate.
    """

    def __init__(self, space: SearchSpace, seed: int, episode_size: int = 4, pool_factor: int = 5,
                 eps0: float = 0.5, eps_decay: float = 0.7, eps_min: float = 0.1, hidden: int = 32,
                 train_epochs: int = 200, lr: float = 1e-2):
        from kdnas.search.controller import RewardPredictor

        super().__init__(space, seed)
        self.episode_size, self.pool_factor = int(episode_size), int(pool_factor)
        self.eps0, self.eps_decay, self.eps_min = float(eps0), float(eps_decay), float(eps_min)
        self.predictor = RewardPredictor(len(SearchSpace.DIMS), hidden=hidden, epochs=train_epochs, lr=lr,
                                         seed=seed)
        self.episode = 0          # episodes completed (told and retrained on)
        self.planned = 0          # episodes planned
        self.queue: list[Arch] = []            # planned, not yet handed out
        self.episode_told: list[Arch] = []     # told during the current episode
        self.plan_info: dict[str, dict] = {}   # key -> {"pred", "context"} of planned, untold archs
        self.obs_info: list[dict] = []         # per observation: prediction and context it was ranked in
        self.prev_best: list[float] | None = None  # encoding of the last completed episode's best
        self.prediction_errors: list[float] = []
        self.train_losses: list[float] = []

    def epsilon(self, episode: int) -> float:
        return max(self.eps_min, self.eps0 * self.eps_decay ** episode)

    def context(self) -> list:
        """[previous episode's best, global best] encodings as lists (None before any)."""
        best = self.best()
        return [self.prev_best, None if best is None else self.encode(best[0]).tolist()]

    def _sequences(self, contexts, archs) -> np.ndarray:
        return np.stack([self.predictor.sequence(None if c[0] is None else np.asarray(c[0]),
                                                 None if c[1] is None else np.asarray(c[1]), self.encode(a))
                         for c, a in zip(contexts, archs)])

    def _plan_episode(self) -> None:
        size, eps = self.episode_size, self.epsilon(self.planned)
        fresh = self.unseen()
        pool_size = min(self.pool_factor * size, len(fresh))
        pool = [fresh[int(i)] for i in self.rng.choice(len(fresh), size=pool_size, replace=False)]
        context = self.context()
        preds = self.predictor.predict(self._sequences([context] * len(pool), pool))
        order = np.argsort(-preds, kind="stable")
        n_greedy = min(int(math.floor((1.0 - eps) * size + 0.5)), len(pool))
        rest = order[n_greedy:]
        n_random = min(size - n_greedy, len(rest))
        chosen = list(order[:n_greedy]) + [rest[int(i)] for i in self.rng.choice(len(rest), n_random, replace=False)]
        self.queue = [pool[int(i)] for i in chosen]
        for i in chosen:
            self.plan_info[pool[int(i)].key] = {"pred": float(preds[int(i)]), "context": context}
        self.planned += 1

    def ask(self, n: int) -> list[Arch]:
        out = []
        while len(out) < n:
            if not self.queue:
                self._plan_episode()
                if not self.queue:
                    break
            arch = self.queue.pop(0)
            self.pending.append(arch)
            out.append(arch)
        return out

    def tell(self, arch: Arch, reward: float) -> None:
        info = self.plan_info.pop(arch.key, None)
        if info is None:  # told without being planned here: predict it in the current context
            context = self.context()
            info = {"pred": float(self.predictor.predict(self._sequences([context], [arch]))[0]),
                    "context": context}
        super().tell(arch, reward)
        self.obs_info.append(info)
        self.episode_told.append(arch)
        if len(self.episode_told) >= self.episode_size:
            self._end_episode()

    def _end_episode(self) -> None:
        count = len(self.episode_told)
        recent = self.observations[-count:]
        infos = self.obs_info[-count:]
        self.prediction_errors.append(float(np.mean([abs(i["pred"] - r) for i, (_, r) in zip(infos, recent)])))
        self.prev_best = self.encode(self.best(recent)[0]).tolist()
        archs, rewards = [a for a, _ in self.observations], [r for _, r in self.observations]
        contexts = [i["context"] for i in self.obs_info]
        # Each observation is also trained in the context the next episode will be ranked in, so that ranking
        # never extrapolates to a context the controller has not seen (it changes whenever the best does).
        contexts, archs, rewards = contexts + [self.context()] * len(archs), archs + archs, rewards + rewards
        seqs = self._sequences(contexts, archs)
        self.train_losses.append(self.predictor.fit(seqs, np.array(rewards)))
        self.episode += 1
        self.episode_told = []

    def state_dict(self) -> dict:
        return {**super().state_dict(), "episode": self.episode, "planned": self.planned,
                "queue": _keys(self.queue), "episode_told": _keys(self.episode_told),
                "plan_info": self.plan_info, "obs_info": self.obs_info, "prev_best": self.prev_best,
                "prediction_errors": self.prediction_errors, "train_losses": self.train_losses,
                "predictor": self.predictor.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.episode, self.planned = int(state["episode"]), int(state["planned"])
        self.queue, self.episode_told = _archs(state["queue"]), _archs(state["episode_told"])
        self.plan_info, self.obs_info = dict(state["plan_info"]), list(state["obs_info"])
        self.prev_best = state["prev_best"]
        self.prediction_errors = [float(e) for e in state["prediction_errors"]]
        self.train_losses = [float(e) for e in state["train_losses"]]
        self.predictor.load_state_dict(state["predictor"])
