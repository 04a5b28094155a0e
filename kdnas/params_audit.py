"""Which params keys a stage reads, recorded while it runs, so a test can hold them to the manifest's
declaration (a key read but not declared would leave DVC and Snakemake serving a stale result after it
changes).

With ``KDNAS_PARAMS_AUDIT=<file>`` set, ``run_stage`` hands the stage an :class:`AuditedParams` and appends
``{"stage", "task", "reads"}`` to ``<file>`` (JSON lines) when the stage finishes. A read is a dotted path
taken with ``[]`` or ``.get``; only the deepest paths count (reading ``search.latency.batch_size`` passes
through ``search``), so a block handed whole to ``json.dumps`` or YAML counts only when nothing inside it
was read on its own. With ``KDNAS_PARAMS_STRICT=1`` (the test suite sets it for every stage it runs) a read
of a key the stage does not declare raises :class:`UndeclaredParamRead` at once, ``.get`` included (a
default would hide it). Neither set, nothing is wrapped and nothing is recorded.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

AUDIT_ENV = "KDNAS_PARAMS_AUDIT"
STRICT_ENV = "KDNAS_PARAMS_STRICT"
_READS: set[str] = set()


class UndeclaredParamRead(KeyError):
    """A stage read a params key its manifest entry does not declare: a bug (DVC and Snakemake would serve a
    stale result after the key changed), not bad input."""

    def __str__(self) -> str:
        return self.args[0]


def covered(path: str, declared: tuple[str, ...]) -> bool:
    """Whether ``path`` lies inside a declared key (or on the way to one: ``search`` for ``search.reward``)."""
    return any(path == key or path.startswith(key + ".") or key.startswith(path + ".") for key in declared)


class AuditedParams(dict):
    """A params dict (nested blocks too) that records the dotted path of every key read, and with ``declared``
    refuses a read outside those keys."""

    def __init__(self, data: dict, prefix: str = "", declared: tuple[str, ...] | None = None):
        super().__init__({k: audited(v, f"{prefix}{k}.", declared) if isinstance(v, dict) else v
                          for k, v in data.items()})
        self._prefix, self._declared = prefix, declared

    def _read(self, key) -> None:
        path = f"{self._prefix}{key}"
        _READS.add(path)
        if self._declared is not None and not covered(path, self._declared):
            raise UndeclaredParamRead(f"params key {path!r} read by a stage that does not declare it (declare it in "
                                      "kdnas/pipeline/manifest.py, or stop reading it)")

    def __getitem__(self, key):
        self._read(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._read(key)
        return super().get(key, default)


def audited(params: dict, prefix: str = "", declared: tuple[str, ...] | None = None) -> AuditedParams:
    return params if isinstance(params, AuditedParams) else AuditedParams(params, prefix, declared)


def keep_audit(source: dict, derived: dict) -> dict:
    """``derived`` (params rebuilt from ``source``, e.g. a task's overrides merged in) audited like ``source``:
    its reads count as reads of the same keys, under the same declaration."""
    return AuditedParams(derived, declared=source._declared) if isinstance(source, AuditedParams) else derived


yaml.SafeDumper.add_representer(AuditedParams, yaml.SafeDumper.represent_dict)


def start(params: dict, declared: list[str]) -> dict:
    """The params to hand the stage: audited when ``KDNAS_PARAMS_AUDIT`` is set, held to ``declared`` (the keys the
    stage may read) when ``KDNAS_PARAMS_STRICT`` is."""
    _READS.clear()
    strict = os.environ.get(STRICT_ENV) == "1"
    if not (strict or os.environ.get(AUDIT_ENV)):
        return params
    return AuditedParams(params, declared=tuple(declared) if strict else None)


def deepest(paths: set[str]) -> list[str]:
    """The paths no other path extends (``a.b`` drops ``a``)."""
    return sorted(p for p in paths if not any(q.startswith(p + ".") for q in paths))


def finish(stage: str, task: str | None) -> None:
    """Appends this stage's reads to the audit file (when auditing)."""
    path = os.environ.get(AUDIT_ENV)
    if path:
        with Path(path).open("a") as out:
            out.write(json.dumps({"stage": stage, "task": task, "reads": deepest(_READS)}) + "\n")
