"""A tiny registry: decorators register classes by name; unknown names fail listing the known ones."""
from __future__ import annotations

from typing import Callable, TypeVar

from kdnas.errors import KdnasError

T = TypeVar("T")


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, type] = {}

    def register(self, obj: type | None = None, *, key: str | None = None) -> Callable | type:
        """Use bare (``@reg.register``) or with a key (``@reg.register(key="x")``)."""
        def add(item):
            name = key or getattr(item, "name", None) or item.__name__
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} registered twice")
            self._items[name] = item
            return item
        return add(obj) if obj is not None else add

    def get(self, name: str):
        if name not in self._items:
            raise KdnasError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._items))}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)
