#!/usr/bin/env bash
# Runs on a lent GPU machine, from the repository root, after benchmarks/gpu/prepare.sh here.
# Call through the device tool with carry [".whl", ".data"] and a timeout that covers BUDGET
# plus about 4 minutes. Fine-tunes the shipped weights for BUDGET seconds, exports them, checks
# cross-device decoding with them, runs the GPU tests and the GPU speed benchmarks (coding in
# float32 and float16, the float16 pixel error, training), and leaves weights, logs and JSON
# figures in $OUT.
# Rehearsal here: DEVICE=cpu PY=.venv/bin/python BUDGET=20 WARMUP=1 TS_STEPS=1 LIMIT=1 runs the
# same steps on the CPU (nothing installed, the shipped weights left alone).
set -uo pipefail
OUT=${OUT:-/tmp/lcodec-gpu-out}
BUDGET=${BUDGET:-420}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
TS_STEPS=${TS_STEPS:-20}
LIMIT=${LIMIT:-8}
mkdir -p "$OUT"
if [ "$DEVICE" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
name=lcodec-msh-gain
"$PY" -m codec train --data .data/train --out runs/gpu --device "$DEVICE" --amp \
  --batch 16 --crop 256 --steps 1000000 --time-budget "$BUDGET" --lr 2e-4 --warmup "${WARMUP:-100}" \
  --ckpt-every 2000 --init-from codec/weights/$name.safetensors --name $name \
  --val .data/val > "$OUT/train.log" 2>&1
tail -c 3000 "$OUT/train.log"
if [ -f runs/gpu/export/$name.safetensors ]; then
  cp runs/gpu/export/$name.safetensors runs/gpu/export/$name.json "$OUT/"
  [ "$DEVICE" = cuda ] && cp runs/gpu/export/$name.safetensors runs/gpu/export/$name.json codec/weights/
fi
"$PY" -m benchmarks.cross_device --data .data/val --json "$OUT/cross_device.json" 2>&1 | tail -3
"$PY" -m benchmarks.speed --data .data/val --device "$DEVICE" --json "$OUT/speed_$DEVICE.json" \
  --workers 4 --limit "$LIMIT" --no-progress 2>&1 | tail -5
"$PY" -m benchmarks.speed --data .data/val --device "$DEVICE" --json "$OUT/speed_${DEVICE}_fp16.json" \
  --workers 4 --limit "$LIMIT" --precision float16 --no-progress 2>&1 | tail -5
"$PY" -m benchmarks.precision --data .data/val --device "$DEVICE" --json "$OUT/precision_$DEVICE.json" \
  --limit "$LIMIT" --no-progress 2>&1 | tail -3
"$PY" -m benchmarks.train_speed --data .data/train --device "$DEVICE" --amp --batch 16 --crop 256 \
  --steps "$TS_STEPS" --json "$OUT/train_speed_$DEVICE.json" 2>&1 | tail -5
"$PY" -m pytest -q tests/test_gpu.py 2>&1 | tail -5 | tee "$OUT/gpu_tests.log"
ls -la "$OUT"
