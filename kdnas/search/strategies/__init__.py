"""Search strategies behind one interface (:class:`~kdnas.search.strategies.base.Strategy`: ask for candidates,
tell results, save and restore state), registered by name (``search.strategy`` in params)."""
from __future__ import annotations

from kdnas.errors import KdnasError
from kdnas.search.strategies.base import STRATEGIES, Strategy
from kdnas.search.strategies.evolution import RegularizedEvolution
from kdnas.search.strategies.kd_nas import KDNASSearch
from kdnas.search.strategies.random_search import RandomSearch
from kdnas.search.strategies.trust_region_bo import TrustRegionBO

__all__ = ["STRATEGIES", "Strategy", "RandomSearch", "RegularizedEvolution", "TrustRegionBO", "KDNASSearch",
           "build_strategy", "check_strategy"]


def check_strategy(name: str, kwargs: dict | None = None) -> None:
    """Raises a one-line error for an unknown strategy or a keyword it does not take."""
    import inspect

    try:
        cls = STRATEGIES.get(name)
    except KdnasError as error:
        raise KdnasError(f"params: search.strategy: {error}") from None
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "space", "seed")]
    for key in kwargs or {}:
        if key not in accepted:
            raise KdnasError(f"params: unknown key search.strategy_kwargs.{key} for strategy {name!r} "
                             f"(allowed: {', '.join(accepted) or 'none'})")


def build_strategy(name: str, space, seed: int, **kwargs):
    return STRATEGIES.get(name)(space=space, seed=seed, **kwargs)
