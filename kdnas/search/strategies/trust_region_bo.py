"""Trust-region Bayesian optimisation over encoded architectures (TuRBO-style)."""
from __future__ import annotations

import warnings

import numpy as np

from kdnas.models.arch import Arch
from kdnas.search.space import SearchSpace
from kdnas.search.strategies.base import STRATEGIES, Strategy


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
        return self.encode(best[0]) if best else np.full(len(self.space.dims), 0.5)

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
            self.restart_center = self.rng.random(len(self.space.dims)).tolist()
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
