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
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.stash/' "$exclude" 2>/dev/null || echo '/.stash/' >> "$exclude"
case "${1:-}" in
  stash)
    if compgen -G '.stash/*.safetensors' > /dev/null; then
      echo "slim.sh: releases are already stashed; run slim.sh restore first" >&2
      exit 1
    fi
    git diff --cached --quiet || { echo "slim.sh: the index has staged changes; commit them first" >&2; exit 1; }
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
for m in sorted(pathlib.Path("codec/weights").glob("*.json")):
    w = m.with_suffix(".safetensors")
    if not w.is_file():
        bad.append(f"{w.name} is missing (git checkout HEAD -- {w} brings it back)")
        continue
    try:
        want = json.loads(m.read_text())["sha256"]
    except (ValueError, KeyError) as e:
        bad.append(f"{m.name} unreadable: {e}")
        continue
    if hashlib.sha256(w.read_bytes()).hexdigest() != want:
        bad.append(f"{w.name} does not match its manifest")
for line in bad:
    print(f"slim.sh: {line}", file=sys.stderr)
if not bad:
    print("restored; every release is present and matches its manifest")
sys.exit(1 if bad else 0)
EOF
    git status --short codec/weights
    ;;
  *)
    echo "usage: benchmarks/gpu/slim.sh stash [--default-only] | restore" >&2
    exit 2
    ;;
esac
