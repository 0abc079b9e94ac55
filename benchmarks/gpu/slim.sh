#!/usr/bin/env bash
# The releases together outgrow what a call to the GPU machine may carry (64 MiB with .whl and
# .data). `slim.sh stash` sets aside every release but the default and lcodec-msh-gain (one of
# each entropy model, so tests/test_gpu.py still covers both) into the ignored .stash/ and out
# of the index; `stash --default-only` keeps the default alone (room for an .init/ to train
# from); `slim.sh restore` puts them back and checks each against its manifest's sha256.
# Restore before committing anything: a commit made while stashed would delete releases.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PY:-.venv/bin/python}
mkdir -p .git/info
grep -qx '/.stash/' .git/info/exclude 2>/dev/null || echo '/.stash/' >> .git/info/exclude
case "${1:-}" in
  stash)
    git diff --cached --quiet || { echo "slim.sh: the index has staged changes; commit first" >&2; exit 1; }
    keep=$("$py" -c 'from codec.net.zoo import find_weights as f; print(f().path.name)')
    also=lcodec-msh-gain.safetensors
    [ "${2:-}" = --default-only ] && also=$keep
    mkdir -p .stash
    for p in codec/weights/*.safetensors; do
      name=$(basename "$p")
      [ "$name" = "$keep" ] || [ "$name" = "$also" ] && continue
      git rm -q --cached "$p"
      mv "$p" .stash/
      echo "stashed $name"
    done
    ;;
  restore)
    shopt -s nullglob
    for p in .stash/*.safetensors; do
      mv "$p" codec/weights/
      git reset -q HEAD -- "codec/weights/$(basename "$p")"
    done
    "$py" - <<'EOF'
import hashlib, json, pathlib, sys
bad = []
for p in sorted(pathlib.Path("codec/weights").glob("*.safetensors")):
    want = json.loads(p.with_suffix(".json").read_text())["sha256"]
    if hashlib.sha256(p.read_bytes()).hexdigest() != want:
        bad.append(p.name)
print("restored; every release matches its manifest" if not bad else f"MISMATCH: {bad}")
sys.exit(1 if bad else 0)
EOF
    git status --short codec/weights
    ;;
  *)
    echo "usage: benchmarks/gpu/slim.sh stash [--default-only] | restore" >&2
    exit 2
    ;;
esac
