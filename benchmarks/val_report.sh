#!/usr/bin/env bash
# Measures the default release of the weights (and, in the RD curves, the release tuned for
# MS-SSIM) on a folder of held-out photos and writes benchmarks/results/:
# RD curves and BD-rates against the classical codecs, the BD-rates' history by training time
# (progress.json, progress.png), CPU speed (with glibc defaults and with the
# command line's allocator setting), determinism, CLI round trips.
# Usage: bash benchmarks/val_report.sh [DATA_DIR] [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/val}
py=${2:-.venv/bin/python}
out=benchmarks/results
mkdir -p "$out"
"$py" -m benchmarks.rd --data "$data" --out "$out/rd" --no-progress \
  --anchors benchmarks/anchors/compressai_kodak.json
manifest=$("$py" -c 'from codec.net.zoo import find_weights; print(find_weights().path.with_suffix(".json"))')
"$py" -m benchmarks.progress --rd "$out/rd/rd.json" --manifest "$manifest" \
  --history "$out/progress.json" --plot "$out/progress.png"
"$py" -m benchmarks.cli_roundtrip --data "$data" --json "$out/cli_roundtrip.json" --quality 50
"$py" -m benchmarks.determinism --data "$data" --json "$out/determinism.json" --limit 8
"$py" -m benchmarks.speed --data "$data" --json "$out/speed_cpu.json" --device cpu --limit 8 \
  --no-progress
"$py" -m benchmarks.speed --data "$data" --json "$out/speed_cpu_malloc.json" --device cpu \
  --limit 8 --no-progress --reuse-freed-memory
