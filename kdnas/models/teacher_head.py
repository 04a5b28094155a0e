"""An already fine-tuned teacher used as given (``teacher.finetune: false``): does its head fit the task, and
which of its outputs scores each of the task's classes?

Reads config.json only (no torch), so the params check refuses a head that cannot fit before any work.
Classes are matched by name, case-insensitively, against the task's label strings and the hub's names for
them (``NEGATIVE``/``POSITIVE`` for SST-2, ``CONTRADICTION``/``NEUTRAL``/``ENTAILMENT`` for MNLI); a head
whose classes carry transformers' default names (``LABEL_0``...) cannot be checked, and its order is taken
to be the task's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from kdnas.data.tasks import Task
from kdnas.errors import KdnasError

DEFAULT_NAME = re.compile(r"^LABEL_\d+$")


@dataclass(frozen=True)
class HeadOrder:
    """``outputs[i]``: the model output that scores the task's class ``i``."""

    outputs: tuple[int, ...]
    by_name: bool  # False: the model's classes are unnamed and taken in the task's order

    @property
    def how(self) -> str:
        return "matched by name" if self.by_name else "unnamed (LABEL_i): taken in the task's order"


def _head_size(config: dict) -> int:
    if config.get("id2label"):
        return len(config["id2label"])
    return int(config.get("num_labels", 2))


def head_order(config: dict, task: Task, where: str = "teacher.backbone") -> HeadOrder:
    """How the model's outputs map onto ``task``'s classes; one-line errors for a head that cannot fit."""
    size = _head_size(config)
    if task.is_regression:
        if size != 1:
            raise KdnasError(f"{where}: the model's head has {size} outputs but {task.name} is a regression task "
                             "(1 output); use a teacher fine-tuned for it, or teacher.finetune: true")
        return HeadOrder((0,), by_name=True)
    id2label = {str(key): name for key, name in (config.get("id2label") or {}).items()}  # JSON keys, or ints
    names = [str(id2label.get(str(i), f"LABEL_{i}")) for i in range(size)]
    if size != task.num_labels:
        raise KdnasError(f"{where}: the model's head has {size} labels {names} but {task.name} has "
                         f"{task.num_labels} {list(task.hub_label_names)}; use a teacher fine-tuned for "
                         f"{task.name}, or teacher.finetune: true")
    if all(DEFAULT_NAME.match(name) for name in names):
        return HeadOrder(tuple(range(size)), by_name=False)
    outputs = []
    for i, label in enumerate(task.labels):
        aliases = {label.lower(), task.hub_label_names[i].lower()}
        found = [j for j, name in enumerate(names) if name.lower() in aliases]
        if len(found) != 1:
            raise KdnasError(f"{where}: cannot match {task.name}'s class {task.hub_label_names[i]!r} to one of the "
                             f"model's labels {names} by name")
        outputs.append(found[0])
    return HeadOrder(tuple(outputs), by_name=True)
