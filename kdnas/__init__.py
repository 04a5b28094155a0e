"""kdnas: knowledge-distillation-guided architecture search for small BERT students."""
__version__ = "0.1.0"
