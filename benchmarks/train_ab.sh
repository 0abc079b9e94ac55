#!/usr/bin/env bash
# bf16 against float32 at equal wall time, then one wsd schedule resumed across a restart
# against two restarted cosines. Each pair runs side by side on one thread each, so both arms
# see the same machine. Then BD-rates of all four on the first 8 validation photos.
#   benchmarks/train_ab.sh TRAIN_DIR VAL_DIR [SECONDS]      (docs/TRAINING.md)
set -eu
cd "$(dirname "$0")/.."
DATA=${1:?training folder}; VAL=${2:?validation folder}; T=${3:-900}; H=$((T / 2))
W=codec/weights/lcodec-msh-gain.safetensors
L="python -m codec"
c="--data $DATA --batch 4 --crop 192 --warmup 50 --lr 5e-5 --seed 81 --threads 1 --ckpt-every 200 --rate-balance 0.25 --steps 1000000"
$L train $c --init-from $W --time-budget $T --schedule wsd --decay 0.2 --no-amp --out runs/wall-f32 &
$L train $c --init-from $W --time-budget $T --schedule wsd --decay 0.2 --amp --out runs/wall-bf16 &
wait
( $L train $c --init-from $W --time-budget $H --schedule cosine --amp --out runs/sched-cos1
  $L export runs/sched-cos1/checkpoint.pt --name sched-cos1 --out runs/sched-cos1/export
  $L train $c --init-from runs/sched-cos1/export/sched-cos1.safetensors --time-budget $H \
    --schedule cosine --amp --out runs/sched-cos2 ) &
( $L train $c --init-from $W --time-budget $T --schedule wsd --decay 0.2 --amp --out runs/sched-wsd &
  p=$!; sleep $H; kill -TERM $p; wait $p || true
  $L train $c --init-from $W --time-budget $T --schedule wsd --decay 0.2 --amp --out runs/sched-wsd ) &
wait
for r in wall-f32 wall-bf16 sched-cos2 sched-wsd; do
  $L export runs/$r/checkpoint.pt --name $r --out runs/$r/export
done
python -m benchmarks.weights_ab --data "$VAL" --limit 8 --threads 1 --qualities 0,25,50,75,100 \
  --weights lcodec-msh-gain --label shipped \
  --weights runs/wall-f32/export/wall-f32.safetensors --label f32-900s \
  --weights runs/wall-bf16/export/wall-bf16.safetensors --label bf16-900s \
  --weights runs/sched-cos2/export/sched-cos2.safetensors --label cosine-restarted \
  --weights runs/sched-wsd/export/sched-wsd.safetensors --label wsd-resumed \
  --json benchmarks/results/train_ab.json
