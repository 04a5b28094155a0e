"""Dotted params keys (``search.latency.backend``): the unit the manifest declares, DVC and Snakemake track,
and the checkpoint keys and the search's resume fingerprint hash."""
from __future__ import annotations


def value_at(params: dict, key: str):
    """The value at a dotted params key, or None where params lack it."""
    node = params
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
