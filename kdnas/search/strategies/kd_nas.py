"""KD-NAS's search: an LSTM reward predictor proposes candidates (Trivedi et al. 2023)."""
from __future__ import annotations

import math

import numpy as np

from kdnas.models.arch import Arch
from kdnas.search.space import SearchSpace
from kdnas.search.strategies.base import STRATEGIES, Strategy, _archs, _keys


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
        self.predictor = RewardPredictor(len(self.space.dims), hidden=hidden, epochs=train_epochs, lr=lr,
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
