"""A per-hardware latency predictor for the search: measured once on a sample of the space, then free.

Latency of a BERT encoder at a fixed batch size and sequence length is, to first order, linear in the
work its matrices do: per layer 4 h^2 for the attention projections, 2 h f for the FFN, and h (times the
sequence length) for attention scores, norms and activations. The predictor fits non-negative
coefficients to those terms (``scipy.optimize.nnls``), so it extrapolates sensibly and stays monotone
in every dimension. It is an artifact tied to the hardware identity it was measured on.
"""
from __future__ import annotations

import numpy as np

from kdnas.models.arch import Arch


def features(arch: Arch) -> np.ndarray:
    """[1, L h^2, L h f, L h, h] (scaled to similar magnitudes)."""
    L, h, f = arch.layers, arch.hidden, arch.ffn
    return np.array([1.0, L * h * h / 1e5, L * h * f / 1e5, L * h / 1e2, h / 1e2])


class LatencyPredictor:
    """Predicts milliseconds at the batch size and sequence length it was fitted for."""

    def __init__(self, coefficients, batch_size: int, seq_len: int, hardware: dict):
        self.coefficients = np.asarray(coefficients, dtype=np.float64)
        self.batch_size, self.seq_len, self.hardware = batch_size, seq_len, hardware

    @classmethod
    def fit(cls, archs: list[Arch], latency_ms: list[float], batch_size: int, seq_len: int,
            hardware: dict) -> "LatencyPredictor":
        from scipy.optimize import nnls

        X = np.stack([features(a) for a in archs])
        y = np.asarray(latency_ms, dtype=np.float64)
        # relative error matters (a 2 ms model and a 700 ms teacher alike): weight rows by 1 / latency
        weights = 1.0 / y
        coefficients, _ = nnls(X * weights[:, None], y * weights)
        return cls(coefficients, batch_size, seq_len, hardware)

    def predict(self, arch: Arch) -> float:
        return float(features(arch) @ self.coefficients)

    def to_dict(self) -> dict:
        return {"coefficients": self.coefficients.tolist(), "batch_size": self.batch_size,
                "seq_len": self.seq_len, "hardware": self.hardware, "features": "1, L*h^2/1e5, L*h*f/1e5, L*h/1e2, h/1e2"}

    @classmethod
    def from_dict(cls, data: dict) -> "LatencyPredictor":
        return cls(data["coefficients"], data["batch_size"], data["seq_len"], data["hardware"])


def check_same_hardware(predictor: dict, threads: int) -> None:
    """Refuses a predictor measured on other hardware (CPU model, GPU or thread count): never mix silently."""
    from kdnas.errors import KdnasError
    from kdnas.latency.measure import hardware_identity

    here = hardware_identity(threads)
    there = predictor.get("hardware", {})
    for key in ("cpu", "gpu", "threads"):
        if key in there and there[key] != here[key]:
            raise KdnasError(f"latency predictor was measured with {key} {there[key]!r}, this machine has "
                             f"{here[key]!r}: rerun the latency_profile stage here (dvc repro -f latency_profile)")


def check_same_backend(predictor: dict, backend: str) -> None:
    """Refuses a predictor timed on another runtime than ``search.latency.backend``."""
    from kdnas.errors import KdnasError

    there = predictor.get("backend", "eager")  # predictors of eager profiles do not name it
    if there != backend:
        raise KdnasError(f"latency predictor was timed on {there}, search.latency.backend is {backend}: rerun the "
                         "latency_profile stage (dvc repro latency_profile)")


def analytic_ms(arch: Arch, batch_size: int, seq_len: int) -> float:
    """Deterministic latency stand-in: multiply-accumulates of one forward pass, in GMAC, read as milliseconds
    on a nominal device doing 1 GMAC per ms (1 TMAC/s).

    Per layer and token: 4 h^2 (Q, K, V, output projections) + 2 h f (FFN); per layer and sequence:
    2 s^2 h (scores and weighted values); plus the pooler's h^2 per sequence. Embedding lookups, norms and
    activations are left out. Only ratios enter the reward (latency / target, target = teacher / speed-up),
    so the nominal unit never decides anything; what it gives up is the hardware's real cost of width,
    depth and memory traffic, which ``latency_profile`` reports as a rank correlation with measurements.
    """
    L, h, f = arch.layers, arch.hidden, arch.ffn
    tokens = batch_size * seq_len
    macs = L * (tokens * (4 * h * h + 2 * h * f) + batch_size * 2 * seq_len * seq_len * h) + batch_size * h * h
    return macs / 1e9


def validation_metrics(predicted: list[float], measured: list[float]) -> dict:
    """Spearman rank correlation and mean absolute percentage error on held-out architectures."""
    from scipy.stats import spearmanr

    p, m = np.asarray(predicted), np.asarray(measured)
    return {"spearman": float(spearmanr(p, m)[0]), "mape_percent": float(np.mean(np.abs(p - m) / m) * 100),
            "held_out": int(len(m))}
