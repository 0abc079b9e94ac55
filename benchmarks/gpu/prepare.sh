#!/usr/bin/env bash
# Run here, before a GPU run: gathers what the GPU machine lacks into ignored folders.
#   .whl/  wheels for Python 3.12 (compressai is not installed there)
#   .data/ a training subset and a few validation photos
# Usage: bash benchmarks/gpu/prepare.sh [TRAIN_DIR] [VAL_DIR] [N_TRAIN]
# N_TRAIN (default 80) keeps the call within what it may carry beside the code.
set -euo pipefail
cd "$(dirname "$0")/../.."
train=${1:-../shared/data/train}
val=${2:-../shared/data/val}
n=${3:-80}
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for d in /.whl/ /.data/ /.init/; do
  grep -qx "$d" "$exclude" 2>/dev/null || echo "$d" >> "$exclude"
done
pip=${PIP:-.venv/bin/pip}
"$pip" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 -d .whl compressai==1.2.8
"$pip" download -q --no-deps -d .whl pytorch_msssim==1.0.0 bjontegaard==1.3.0
rm -rf .data && mkdir -p .data/train .data/val
find "$train" -maxdepth 1 -name '*.jpg' | sort | awk "NR % 2 == 1" | head -n "$n" \
  | xargs -I{} cp {} .data/train/
find "$val" -maxdepth 1 -name '*.png' | sort | head -n 8 | xargs -I{} cp {} .data/val/
du -sh .whl .data
travel=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } \
  | { xargs -0 du -ck 2>/dev/null || true; } | tail -1 | cut -f1)
extra=$(du -sk .whl .data $(ls -d .init 2>/dev/null) | awk '{s += $1} END {print s}')
total=$(( (travel + extra) / 1024 ))
echo "a call carries ${total} MiB with .whl, .data and any .init (at most 64)"
[ "$total" -le 64 ] || echo "over the limit: benchmarks/gpu/slim.sh stash sets releases aside"
