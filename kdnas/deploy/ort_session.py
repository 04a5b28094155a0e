"""ONNX Runtime without torch: whether it is installed, and a CPU session configured for fair timing. Imported
by the params checks and by the timing process, which must stay light."""
from __future__ import annotations

import importlib.util

from kdnas.errors import KdnasError

EXTRA = ("onnx", "onnxruntime")


def require_onnxruntime(what: str = "latency backend 'onnxruntime'", error: type[KdnasError] = KdnasError) -> None:
    """One line naming the extra to install when ONNX or ONNX Runtime is missing (found without importing
    them). ``error``: the subclass to raise (the params checks raise their own)."""
    if any(importlib.util.find_spec(module) is None for module in EXTRA):
        raise error(f"{what} needs the onnx extra: pip install -e '.[onnx]' (onnx and onnxruntime)")


def session(path, threads: int):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads that sleep between runs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Each session owns its thread pool, and by default its threads spin for a while after every run. Timed
    # round-robin, the idle sessions' spinning threads then take the cores from the one being timed: the
    # fp32 teacher measured 55-62 ms at batch 1 beside two other sessions against 17.5 ms alone, and 17.8 ms
    # with spinning off (2 cores, batch 32 within 5%).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
