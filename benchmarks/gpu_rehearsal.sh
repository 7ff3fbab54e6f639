#!/usr/bin/env bash
# One short script for a GPU machine (about 10-15 minutes; never in CI): the rehearsal of the Colab run with
# torch's GPU memory capped at a T4's 15 GB. It runs, in order:
#   1. benchmarks/gpu_train.sh: snce's SAE trainer against SAELens and sparsify, same rows, held-out FVU
#      after the same tokens (peers: pip install ".[bench]" beforehand; a missing peer is reported);
#   2. benchmarks/sd_image_time.py: seconds per 512 px image in fp16 and peak GPU memory at batch 1, 4, 8,
#      on SD v1.4's real-size random-weight stand-ins (built once, ~5 GB);
#   3. snce workbook --profile colab-rehearsal: every notebook at the real shapes, each cell's time, peak
#      RAM and peak GPU memory in $SNCE_HOME/colab-rehearsal/cells.json.
# Say which card it was: its times are not a T4's (an H100's fp16 tensor-core peak is ~15x a T4's 65 TFLOP/s).
#   bash benchmarks/gpu_rehearsal.sh [OUT_DIR]        (default ./runs/gpu-rehearsal; PY=python to choose)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
out=${1:-runs/gpu-rehearsal}
mkdir -p "$out"
export SNCE_GPU_MEMORY_CAP_GB=${SNCE_GPU_MEMORY_CAP_GB:-15} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; p = torch.cuda.get_device_properties(0); print(p.name, round(p.total_memory / 1e9, 1), 'GB')" | tee "$out/device.txt"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv | tee -a "$out/device.txt" || true
start=$(date +%s)
PY=$PY RUN="$PY benchmarks/t4_cap.py" bash benchmarks/gpu_train.sh 2>&1 | tee "$out/train.txt"
$PY benchmarks/t4_cap.py benchmarks/sd_image_time.py --batch 1 4 8 --steps 10 2>&1 | tee "$out/sd_image_time.jsonl"
SNCE_HOME=$PWD/$out $PY -m snce_lib workbook --profile colab-rehearsal 2>&1 | tee "$out/workbook.txt"
echo "gpu-rehearsal: done in $(( $(date +%s) - start )) s; cells: $out/colab-rehearsal/cells.json"
