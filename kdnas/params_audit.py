"""Which params keys a stage reads, recorded while it runs, so a test can hold them to the manifest's
declaration (a key read but not declared would leave DVC and Snakemake serving a stale result after it
changes).

With ``KDNAS_PARAMS_AUDIT=<file>`` set, ``run_stage`` hands the stage an :class:`AuditedParams` and appends
``{"stage", "task", "reads"}`` to ``<file>`` (JSON lines) when the stage finishes. A read is a dotted path
taken with ``[]`` or ``.get``; only the deepest paths count (reading ``search.latency.batch_size`` passes
through ``search``), so a block handed whole to ``json.dumps`` or YAML counts only when nothing inside it
was read on its own. Unset, nothing is wrapped and nothing is recorded.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

AUDIT_ENV = "KDNAS_PARAMS_AUDIT"
_READS: set[str] = set()


class AuditedParams(dict):
    """A params dict (nested blocks too) that records the dotted path of every key read."""

    def __init__(self, data: dict, prefix: str = ""):
        super().__init__({k: audited(v, f"{prefix}{k}.") if isinstance(v, dict) else v for k, v in data.items()})
        self._prefix = prefix

    def __getitem__(self, key):
        _READS.add(f"{self._prefix}{key}")
        return super().__getitem__(key)

    def get(self, key, default=None):
        _READS.add(f"{self._prefix}{key}")
        return super().get(key, default)


def audited(params: dict, prefix: str = "") -> AuditedParams:
    return params if isinstance(params, AuditedParams) else AuditedParams(params, prefix)


def keep_audit(source: dict, derived: dict) -> dict:
    """``derived`` (params rebuilt from ``source``, e.g. a task's overrides merged in) audited like ``source``:
    its reads count as reads of the same keys."""
    return AuditedParams(derived) if isinstance(source, AuditedParams) else derived


yaml.SafeDumper.add_representer(AuditedParams, yaml.SafeDumper.represent_dict)


def start(params: dict) -> dict:
    """The params to hand the stage: audited when ``KDNAS_PARAMS_AUDIT`` is set."""
    _READS.clear()
    return AuditedParams(params) if os.environ.get(AUDIT_ENV) else params


def deepest(paths: set[str]) -> list[str]:
    """The paths no other path extends (``a.b`` drops ``a``)."""
    return sorted(p for p in paths if not any(q.startswith(p + ".") for q in paths))


def finish(stage: str, task: str | None) -> None:
    """Appends this stage's reads to the audit file (when auditing)."""
    path = os.environ.get(AUDIT_ENV)
    if path:
        with Path(path).open("a") as out:
            out.write(json.dumps({"stage": stage, "task": task, "reads": deepest(_READS)}) + "\n")
