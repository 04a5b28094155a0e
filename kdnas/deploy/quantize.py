"""The int8 student users deploy: ONNX Runtime's own quantisers, and the ONNX Runtime logits it is scored on.

``dynamic``: int8 weights, activations quantised on the fly (``quantize_dynamic``), no data needed.
``static``: the matrix products' weights and input activations in int8 (QDQ form), activation ranges
calibrated on training rows (``quantize_static``, MinMax). ``best`` makes both and keeps the one that scores
better on dev (:mod:`kdnas.evaluation.int8_scores`). Scoring runs the ONNX files through ONNX Runtime on the
CPU, the runtime the file ships to.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kdnas.deploy.onnx_runtime import INPUTS, quiet_root_logger
from kdnas.deploy.ort_session import session
from kdnas.errors import KdnasError

METHODS = ("dynamic", "static")


def encode_for_ort(tokenizer, firsts: list[str], seconds: list[str] | None, max_length: int) -> dict[str, np.ndarray]:
    """The three int64 inputs the exported graphs take (token type ids zero when the tokenizer has none)."""
    encoded = tokenizer(firsts, seconds, truncation=True, max_length=max_length, padding=True, return_tensors="np")
    feed = {name: np.asarray(encoded[name], dtype=np.int64) for name in INPUTS if name in encoded}
    feed.setdefault("token_type_ids", np.zeros_like(feed["input_ids"]))
    return feed


def batches(tokenizer, frame, max_length: int, batch_size: int):
    """Feeds of ``batch_size`` rows of a kdnas frame (``text_a``, ``text_b``), in order."""
    pair = frame["text_b"].notna().any()
    for start in range(0, len(frame), batch_size):
        part = frame.iloc[start:start + batch_size]
        yield encode_for_ort(tokenizer, part["text_a"].tolist(), part["text_b"].tolist() if pair else None, max_length)


def ort_logits(path: Path, feeds, threads: int) -> np.ndarray:
    """Logits of an ONNX file over ``feeds`` (a list of input dicts), concatenated."""
    run = session(path, threads)
    return np.concatenate([run.run(None, feed)[0] for feed in feeds])


class _CalibrationRows:
    """ONNX Runtime's CalibrationDataReader protocol over prepared feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self._feeds = iter(feeds)

    def get_next(self):
        return next(self._feeds, None)

    def rewind(self):  # protocol method some calibrators call; one pass is all MinMax needs
        return None


def quantize(fp32: Path, out: Path, method: str, calibration: list[dict[str, np.ndarray]] | None = None) -> Path:
    """Writes the int8 form of ``fp32`` to ``out`` with ONNX Runtime's quantiser for ``method``."""
    with quiet_root_logger():
        return _quantize(fp32, out, method, calibration)


def _quantize(fp32: Path, out: Path, method: str, calibration: list[dict[str, np.ndarray]] | None) -> Path:
    import onnx
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method == "dynamic":
        # ONNX shape inference types no output of a fused (com.microsoft) operator; those outputs are fp32
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        return out
    if method != "static":
        raise KdnasError(f"int8 method {method!r} is invalid: use one of {', '.join(METHODS)}")
    if not calibration:
        raise KdnasError("static int8 quantisation needs calibration rows (export.int8.calibration_rows)")
    prepared = out.with_name(out.stem + ".prepared.onnx")
    # graph clean-up and shape inference, as ONNX Runtime advises. A fused graph needs ONNX Runtime's symbolic
    # inference (ONNX's own types nothing after a com.microsoft operator, and calibration then misses those
    # tensors); on a plain BERT graph the symbolic inference fails, and ONNX's is enough
    fused = any(node.domain == "com.microsoft" for node in onnx.load(str(fp32), load_external_data=False).graph.node)
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=not fused)
    try:
        # the matrix products and the embedding lookups, as dynamic quantisation does. Quantising the additions
        # too put the attention mask's huge negative values into one int8 range, which flattened a regression
        # student to a constant; leaving out the lookups kept a small student's embeddings (most of it) in fp32
        quantize_static(str(prepared), str(out), _CalibrationRows(calibration), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["MatMul", "Gemm", "Gather"])
    finally:
        prepared.unlink(missing_ok=True)
    return out
