"""Search strategies by name (``search.strategy`` in params)."""
from __future__ import annotations

from kdnas.errors import KdnasError
from kdnas.registry import Registry

STRATEGIES = Registry("search strategy")


def check_strategy(name: str, kwargs: dict | None = None) -> None:
    """Raises a one-line error for an unknown strategy or a keyword it does not take."""
    import inspect

    from kdnas.search import strategies  # noqa: F401  (registers the built-in strategies)

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
    from kdnas.search import strategies  # noqa: F401

    return STRATEGIES.get(name)(space=space, seed=seed, **kwargs)
