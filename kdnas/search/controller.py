"""The KD-NAS controller: an LSTM that predicts a candidate's reward from its encoding in context.

Trivedi et al. 2023, "Neural Architecture Search for Effective Teacher-Student Knowledge Transfer in
Language Models" (KD-NAS). The controller reads the sequence [previous episode's best architecture, global
best architecture, candidate] (each an encoding in [0, 1]^d, zeros before any observation) and regresses the
candidate's reward; the search uses it to rank a pool of unseen candidates each episode.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn


@contextmanager
def _one_thread():
    """Runs torch single-threaded: faster for a net this small, and results independent of the core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _adam_step(params, grads, moments, step: int, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
    """One Adam update (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization"), in place.

    Written out rather than ``torch.optim.Adam``: the arithmetic stays fixed whatever kernel torch would
    pick (foreach, fused), and a cold process skips torch.optim's lazy import of ``torch._dynamo`` (seconds).
    """
    beta1, beta2 = betas
    for param, grad, (m, v) in zip(params, grads, moments):
        m.mul_(beta1).add_(grad, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        m_hat = m / (1 - beta1 ** step)
        v_hat = v / (1 - beta2 ** step)
        param.sub_(lr * m_hat / (v_hat.sqrt() + eps))


class _Net(nn.Module):
    """LSTM over the three-step context sequence, then a linear head on the last hidden state."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(input_size=dim, hidden_size=hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(seqs)
        return self.head(out[:, -1]).squeeze(-1)


class RewardPredictor:
    """Reward regressor for encoded architectures in context, deterministic on CPU.

    Weights are initialised from a private ``torch.Generator`` (the global torch RNG is left alone) and
    training is full-batch Adam with no dropout or shuffling, so the result depends only on the initial
    weights and the data: a predictor restored from ``state_dict`` retrains exactly like the original.

    Args:
        dim: encoding size (4 for layers, hidden, heads, ffn).
        hidden: LSTM hidden size.
        epochs: Adam steps per ``fit`` (full batch).
        lr: Adam learning rate.
        seed: seed of the initial weights.
    """

    def __init__(self, dim: int, hidden: int = 32, epochs: int = 200, lr: float = 1e-2, seed: int = 0):
        self.dim, self.epochs, self.lr = dim, int(epochs), float(lr)
        self.net = _Net(dim, hidden)
        generator = torch.Generator().manual_seed(int(seed))
        bound = 1.0 / math.sqrt(hidden)  # PyTorch's own LSTM/Linear init range, drawn from our generator
        with torch.no_grad():
            for param in self.net.parameters():
                param.uniform_(-bound, bound, generator=generator)
        # Targets are standardised for training; predictions are mapped back to reward units.
        self.y_mean, self.y_std = 0.0, 1.0

    @staticmethod
    def sequence(prev_best: np.ndarray | None, global_best: np.ndarray | None, candidate: np.ndarray) -> np.ndarray:
        """The (3, dim) input for one candidate; a missing context step is zeros."""
        zeros = np.zeros_like(candidate, dtype=np.float64)
        steps = [zeros if prev_best is None else prev_best, zeros if global_best is None else global_best, candidate]
        return np.stack([np.asarray(s, dtype=np.float64) for s in steps])

    def predict(self, seqs: np.ndarray) -> np.ndarray:
        """Predicted rewards for an (n, 3, dim) batch of sequences."""
        seqs = np.asarray(seqs, dtype=np.float32)
        if len(seqs) == 0:
            return np.zeros(0)
        self.net.eval()
        with torch.no_grad(), _one_thread():
            z = self.net(torch.from_numpy(seqs)).double().numpy()
        return z * self.y_std + self.y_mean

    def fit(self, seqs: np.ndarray, rewards: np.ndarray) -> float:
        """Retrains on the given sequences (warm start, fresh Adam moments) with full-batch MSE.

        Returns the final training MSE.

        The loss is computed on standardised targets, the returned MSE is in reward units.
        """
        x = torch.from_numpy(np.asarray(seqs, dtype=np.float32))
        y = np.asarray(rewards, dtype=np.float64)
        self.y_mean = float(y.mean())
        std = float(y.std())
        self.y_std = std if std > 1e-8 else 1.0
        target = torch.from_numpy(((y - self.y_mean) / self.y_std).astype(np.float32))
        params = list(self.net.parameters())
        moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        self.net.train()
        loss = torch.zeros(())
        with _one_thread():
            for step in range(1, self.epochs + 1):
                loss = nn.functional.mse_loss(self.net(x), target)
                grads = torch.autograd.grad(loss, params)
                with torch.no_grad():
                    _adam_step(params, grads, moments, step, self.lr)
        return float(loss.detach()) * self.y_std ** 2

    def state_dict(self) -> dict:
        """JSON-serialisable weights (nested lists) and target statistics."""
        return {"weights": {name: t.detach().tolist() for name, t in self.net.state_dict().items()},
                "y_mean": self.y_mean, "y_std": self.y_std}

    def load_state_dict(self, state: dict) -> None:
        current = self.net.state_dict()
        self.net.load_state_dict({name: torch.tensor(state["weights"][name], dtype=current[name].dtype)
                                  for name in current})
        self.y_mean, self.y_std = float(state["y_mean"]), float(state["y_std"])
