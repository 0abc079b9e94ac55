#!/usr/bin/env bash
# Runs on a lent GPU machine, from the repository root, after benchmarks/gpu/prepare.sh here.
# Call through the device tool with carry [".whl", ".data"] and a timeout that covers BUDGET
# plus about 4 minutes. Fine-tunes the shipped weights for BUDGET seconds, exports them, checks
# cross-device decoding with them, runs the GPU tests and the GPU speed benchmarks (coding and
# training), and leaves weights, logs and JSON figures in $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/lcodec-gpu-out}
BUDGET=${BUDGET:-420}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
name=lcodec-msh-gain
python3 -m codec train --data .data/train --out runs/gpu --device cuda --amp \
  --batch 16 --crop 256 --steps 1000000 --time-budget "$BUDGET" --lr 2e-4 --warmup 100 \
  --ckpt-every 2000 --init-from codec/weights/$name.safetensors --name $name \
  --val .data/val > "$OUT/train.log" 2>&1
tail -c 3000 "$OUT/train.log"
if [ -f runs/gpu/export/$name.safetensors ]; then
  cp runs/gpu/export/$name.safetensors runs/gpu/export/$name.json "$OUT/"
  cp runs/gpu/export/$name.safetensors runs/gpu/export/$name.json codec/weights/
fi
python3 -m benchmarks.cross_device --data .data/val --json "$OUT/cross_device.json" 2>&1 | tail -3
python3 -m benchmarks.speed --data .data/val --device cuda --json "$OUT/speed_cuda.json" --workers 4 \
  --no-progress 2>&1 | tail -5
python3 -m benchmarks.train_speed --data .data/train --device cuda --amp --batch 16 --crop 256 \
  --steps 20 --json "$OUT/train_speed_cuda.json" 2>&1 | tail -5
python3 -m pytest -q tests/test_gpu.py 2>&1 | tail -5 | tee "$OUT/gpu_tests.log"
ls -la "$OUT"
