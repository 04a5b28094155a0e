"""What users ship: the exported student (HF folder, ONNX graph, model card) and its int8 form."""
