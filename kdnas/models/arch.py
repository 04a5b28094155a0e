"""A student architecture: the dimensions the search explores."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Arch:
    """A uniform BERT student: every layer has the same heads and FFN width.

    Attributes:
        layers: number of transformer layers.
        hidden: hidden (residual stream) size.
        heads: attention heads per layer; head size is hidden / heads.
        ffn: feed-forward (intermediate) size.
        layer_set: the teacher layers the student inherits, in order (0-based); empty = uniformly spaced
            layers that keep the last (:func:`uniform_layers`). It changes
            which weights the student starts from, not its shape, so not its latency.
    """

    layers: int
    hidden: int
    heads: int
    ffn: int
    layer_set: tuple[int, ...] = ()

    @property
    def head_size(self) -> int:
        return self.hidden // self.heads

    @property
    def shape(self) -> Arch:
        """The same dimensions with uniformly spaced layers: what latency depends on."""
        return Arch(self.layers, self.hidden, self.heads, self.ffn)

    @property
    def key(self) -> str:
        """A stable id used in file names, logs and to dedupe trials: ``L3-H384-A12-F384``, with
        ``-K0.1.2`` appended when the student inherits teacher layers 0, 1 and 2 instead of the uniform ones."""
        key = f"L{self.layers}-H{self.hidden}-A{self.heads}-F{self.ffn}"
        return key + (f"-K{'.'.join(map(str, self.layer_set))}" if self.layer_set else "")

    def to_dict(self) -> dict:
        """The dimensions; ``layer_set`` only when it is set, so uniform students' records stay as they were."""
        data = {"layers": self.layers, "hidden": self.hidden, "heads": self.heads, "ffn": self.ffn}
        if self.layer_set:
            data["layer_set"] = list(self.layer_set)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Arch:
        dims = [int(data[name]) for name in ("layers", "hidden", "heads", "ffn")]
        return cls(*dims, tuple(int(t) for t in data.get("layer_set") or ()))

    @classmethod
    def from_key(cls, key: str) -> Arch:
        parts = {p[0]: p[1:] for p in key.split("-")}
        layer_set = tuple(int(t) for t in parts["K"].split(".")) if "K" in parts else ()
        return cls(int(parts["L"]), int(parts["H"]), int(parts["A"]), int(parts["F"]), layer_set)


def uniform_layers(teacher_layers: int, layers: int) -> list[int]:
    """Uniformly spaced teacher layers that always include the last one (3 of 6 -> 1, 3, 5)."""
    return [(i + 1) * teacher_layers // layers - 1 for i in range(layers)]


def layer_set_problems(arch: Arch, teacher_layers: int) -> list[str]:
    """Why ``arch``'s layer set cannot come from a teacher this deep (empty: it can, or it names none)."""
    kept, problems = list(arch.layer_set), []
    if kept and len(kept) != arch.layers:
        problems.append(f"layer set {kept} names {len(kept)} teacher layers for {arch.layers} student layers")
    if kept and (kept != sorted(set(kept)) or kept[0] < 0 or kept[-1] >= teacher_layers):
        problems.append(f"layer set {kept} is not increasing teacher layers in 0..{teacher_layers - 1}")
    return problems


# Named ways to choose a student's teacher layers (``space.layer_patterns``), each (teacher depth, student
# depth) -> teacher layers in order. ``uniform`` is every hand-crafted student's; ``bottom`` is the
# top-layer dropping that Sajjad et al. (2023, "On the effect of dropping layers of pre-trained transformer
# models") found best among fixed strategies for fine-tuned BERTs; ``early_last`` skips the first layer and
# keeps the next ones and the last, which bench/layer_choice.py found best for MiniLM-L6 on STS-B.
LAYER_PATTERNS = {
    "uniform": uniform_layers,
    "even": lambda t, n: [i * t // n for i in range(n)],                                # 3 of 6 -> 0, 2, 4
    "spread": lambda t, n: [t - 1] if n == 1 else [(2 * i * (t - 1) + n - 1) // (2 * (n - 1)) for i in range(n)],
    "bottom": lambda t, n: list(range(n)),                                              # 3 of 6 -> 0, 1, 2
    "top": lambda t, n: list(range(t - n, t)),                                          # 3 of 6 -> 3, 4, 5
    "early_last": lambda t, n: list(range(t)) if n >= t else [*range(1, n), t - 1],     # 3 of 6 -> 1, 2, 5
}


def with_layer_pattern(shape: Arch, pattern: str, teacher_layers: int) -> Arch:
    """``shape`` inheriting the teacher layers ``pattern`` names; the uniform set is written as no set, so a
    student keeps one key whichever pattern reaches its layers."""
    kept = tuple(LAYER_PATTERNS[pattern](teacher_layers, shape.layers))
    uniform = tuple(uniform_layers(teacher_layers, shape.layers))
    return Arch(shape.layers, shape.hidden, shape.heads, shape.ffn, () if kept == uniform else kept)
