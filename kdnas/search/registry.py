"""Search strategies by name (``search.strategy`` in params)."""
from __future__ import annotations

from kdnas.errors import KdnasError
from kdnas.registry import Registry

STRATEGIES = Registry("search strategy")


def check_strategy(name: str) -> None:
    from kdnas.search import strategies  # noqa: F401  (registers the built-in strategies)

    try:
        STRATEGIES.get(name)
    except KdnasError as error:
        raise KdnasError(f"params: search.strategy: {error}") from None


def build_strategy(name: str, space, seed: int, **kwargs):
    from kdnas.search import strategies  # noqa: F401

    return STRATEGIES.get(name)(space=space, seed=seed, **kwargs)
