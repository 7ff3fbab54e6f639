#!/usr/bin/env bash
# One command for the day a GPU is at hand: SAE training throughput and held-out FVU of snce (sparse
# and dense paths, mixed precision), SAELens and sparsify on the same rows, at both shapes, then on
# an activation store when one is given.
#   bash benchmarks/gpu_train.sh [STORE_DIR]        (peers: pip install ".[bench]" first)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
# RUN starts the benchmark scripts (benchmarks/gpu_rehearsal.sh sets it to cap GPU memory at a T4's)
RUN=${RUN:-$PY}
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
$RUN benchmarks/train_throughput.py --device cuda --steps 200 --shapes 768x3072 384x1536
if [ $# -ge 1 ]; then $RUN benchmarks/train_throughput.py --device cuda --steps 200 --store "$1"; fi
