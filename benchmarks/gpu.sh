#!/usr/bin/env bash
# GPT-2-small-sized training on one NVIDIA H100: codex-ml's trainer vs a hand-written loop,
# each eager and torch.compile'd (the trainer's training.compile=true).
#
#   bash benchmarks/gpu.sh                     # ~5-9 min on a fresh machine, installs included
#   bash benchmarks/gpu.sh --no-compile        # the eager two only (~3-6 min)
#   bash benchmarks/gpu.sh --precision fp16    # fp16 + gradient scaler (GPUs without bf16)
#
# Goals (issue 12): the compiled trainer at >= 40% MFU in bf16 and >= 1.0x the compiled hand loop.
# Needs Python 3.10+ with pip, and PyPI (nothing else is downloaded). torch is
# installed only when the one already there cannot see the GPU; codex-ml runs
# from this checkout (PYTHONPATH=src), so only its small runtime dependencies
# are installed. Prints tokens/s, MFU and peak memory per variant, and writes
# them to benchmarks/results/gpu.json. Arguments are passed to gpu_train.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
started=$(date +%s)

if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu.sh: nvidia-smi not found; this script needs an NVIDIA GPU." >&2
    exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# A throwaway benchmark machine: let pip install into a distribution's "externally managed" Python.
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "gpu.sh: installing torch from PyPI (its Linux wheel is built with CUDA)"
    "$PYTHON" -m pip install --quiet "torch>=2.2"
elif ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.version.cuda else 1)"; then
    echo "gpu.sh: the installed torch is a CPU-only build; replacing it with PyPI's CUDA build"
    "$PYTHON" -m pip install --quiet --force-reinstall --no-deps "torch>=2.2"
    "$PYTHON" -m pip install --quiet "torch>=2.2"  # its CUDA libraries
else
    echo "gpu.sh: using the installed torch"
fi
"$PYTHON" -c "import pluggy, safetensors" 2>/dev/null \
    || "$PYTHON" -m pip install --quiet "pluggy>=1.5" "safetensors>=0.4"
"$PYTHON" -c "import torch, sys; ok = torch.cuda.is_available(); print('gpu.sh: torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name() if ok else 'NO GPU VISIBLE'); sys.exit(0 if ok else 1)"

mkdir -p benchmarks/results
PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" \
    "$PYTHON" benchmarks/gpu_train.py --output benchmarks/results/gpu.json "$@"
echo "gpu.sh: done in $(( $(date +%s) - started )) s (results in benchmarks/results/gpu.json)"
