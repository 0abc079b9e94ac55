#!/usr/bin/env bash
# Runs on a lent GPU machine, from the repository root, after benchmarks/gpu/prepare.sh here.
# Call through the device tool with carry [".whl", ".data"] and timeout_s 600. Quick checks come
# first, so a run cut short still brings back what matters most: cross-device decoding of the
# default release, the GPU tests, a fine-tune of the default release for BUDGET seconds
# (exported to $OUT for measuring here, never into codec/weights), the speed benchmarks, then
# the effort levels. Each step is bounded by `timeout`; ONLY="cross_device speed" runs just
# the steps named. What comes back is kept to a few files under $OUT: steps.log (the last 40
# lines of each step's output), results.tar (the JSON results, refreshed after each step, so a run cut short keeps
# what finished) and the fine-tuned weights in 15 MB parts (gpu-finetune.safetensors.part-*;
# `cat` them back together and check the manifest's sha256).
# Rehearsal here: DEVICE=cpu PY=.venv/bin/python BUDGET=20 WARMUP=1 TS_STEPS=1 LIMIT=1 \
#   EFFORT_LIMIT=1 EFFORTS=1,2 SCALE=5 runs the same steps on the CPU (nothing installed;
#   SCALE multiplies every step's time limit).
set -uo pipefail
OUT=${OUT:-/tmp/lcodec-gpu-out}
BUDGET=${BUDGET:-180}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
TS_STEPS=${TS_STEPS:-20}
LIMIT=${LIMIT:-4}
EFFORT_LIMIT=${EFFORT_LIMIT:-1}
EFFORTS=${EFFORTS:-1,4,6,9}
SCALE=${SCALE:-1}
STEPS="cross_device gpu_tests train speed speed_fp16 precision train_speed effort"
for s in ${ONLY:-}; do
  [[ " $STEPS " == *" $s "* ]] || { echo "run.sh: unknown step $s (steps: $STEPS)" >&2; exit 2; }
done
RES=$(mktemp -d)
mkdir -p "$OUT"
rm -f "$OUT"/steps.log "$OUT"/results.tar "$OUT"/gpu-finetune.*  # never mix two runs' files
if [ "$DEVICE" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
step() { # step SECONDS NAME COMMAND...: run bounded, append to steps.log, show its tail
  local limit=$(($1 * SCALE)) name=$2
  shift 2
  want "$name" || return 0
  echo "== $name"
  timeout "$limit" "$@" > "$RES/$name.log" 2>&1
  echo "rc=$?" >> "$RES/$name.log"
  { echo "== $name"; tr '\r' '\n' < "$RES/$name.log" | tail -n 40; } >> "$OUT/steps.log"
  tail -c 600 "$RES/$name.log"
  tar cf "$OUT/results.tar" -C "$RES" --exclude='*.log' .
}
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/steps.log" 2>&1
read -r name arch path < <("$PY" -c 'from codec.net.zoo import find_weights as f; w = f()
print(w.model_id, w.manifest["architecture"], w.path)')
[ -n "${arch:-}" ] || { echo "run.sh: cannot read the default release" >&2; exit 1; }
INIT=${INIT:-$path}
echo "default release $name ($arch); fine-tune from $INIT"
[ "$DEVICE" = cuda ] && step 90 cross_device "$PY" -m benchmarks.cross_device --data .data/val \
  --json "$RES/cross_device.json"
step 90 gpu_tests "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py
want train && rm -rf runs/gpu  # a fresh run, never a resumed one
step $((BUDGET + 60)) train "$PY" -m codec train --architecture "$arch" --data .data/train \
  --out runs/gpu --device "$DEVICE" --amp --batch 16 --crop 256 --steps 1000000 \
  --time-budget "$BUDGET" --schedule wsd --decay 0.5 --lr 1e-4 --warmup "${WARMUP:-100}" \
  --rate-balance 0.25 --ckpt-every 2000 --init-from "$INIT" --name gpu-finetune
if want train && [ -f runs/gpu/export/gpu-finetune.safetensors ]; then
  cp runs/gpu/export/gpu-finetune.json "$OUT/"
  split -b 15M runs/gpu/export/gpu-finetune.safetensors "$OUT/gpu-finetune.safetensors.part-"
fi
step 90 speed "$PY" -m benchmarks.speed --data .data/val --device "$DEVICE" \
  --json "$RES/speed_$DEVICE.json" --workers 4 --limit "$LIMIT" --repeats 3 --no-progress
step 90 speed_fp16 "$PY" -m benchmarks.speed --data .data/val --device "$DEVICE" \
  --json "$RES/speed_${DEVICE}_fp16.json" --workers 4 --limit "$LIMIT" --repeats 3 \
  --precision float16 --no-progress
step 45 precision "$PY" -m benchmarks.precision --data .data/val --device "$DEVICE" \
  --json "$RES/precision_$DEVICE.json" --limit "$LIMIT" --no-progress
step 45 train_speed "$PY" -m benchmarks.train_speed --data .data/train --device "$DEVICE" \
  --architecture "$arch" --amp --batch 16 --crop 256 --steps "$TS_STEPS" \
  --json "$RES/train_speed_$DEVICE.json"
step 120 effort "$PY" -m benchmarks.effort --data .data/val --device "$DEVICE" \
  --limit "$EFFORT_LIMIT" --efforts "$EFFORTS" --qualities 20,50,80 --no-targets \
  --json "$RES/effort_$DEVICE.json"
ls -la "$OUT"
