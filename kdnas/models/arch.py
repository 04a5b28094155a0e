"""A student architecture: the four dimensions the search explores."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, order=True)
class Arch:
    """A uniform BERT student: every layer has the same heads and FFN width.

    Attributes:
        layers: number of transformer layers.
        hidden: hidden (residual stream) size.
        heads: attention heads per layer; head size is hidden / heads.
        ffn: feed-forward (intermediate) size.
    """

    layers: int
    hidden: int
    heads: int
    ffn: int

    @property
    def head_size(self) -> int:
        return self.hidden // self.heads

    @property
    def key(self) -> str:
        """A stable id used in file names, logs and to dedupe trials."""
        return f"L{self.layers}-H{self.hidden}-A{self.heads}-F{self.ffn}"

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Arch":
        return cls(**{name: int(data[name]) for name in ("layers", "hidden", "heads", "ffn")})

    @classmethod
    def from_key(cls, key: str) -> "Arch":
        parts = dict((p[0], int(p[1:])) for p in key.split("-"))
        return cls(parts["L"], parts["H"], parts["A"], parts["F"])
