"""Latency: careful measurement (eager and ONNX Runtime), the search's predictor, and the latency stage's table."""
