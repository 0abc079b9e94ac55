#!/usr/bin/env bash
# What a hostile or careless invocation costs the lcodec command: exit status, wall time, peak
# RSS and message of each case in docs/LIMITS.md (a bomb PNG, a bomb .lcz, a missing file, a
# non-image, an interrupted batch resumed with --skip-existing, decompressing in place).
# Usage: bash benchmarks/limits.sh DATA_DIR OUT_DIR [PYTHON] [THREADS]
# DATA_DIR holds photos (the first 8 PNG or JPEG files, sorted, make the batch); OUT_DIR is
# created and must not exist yet.
set -euo pipefail
data=$(realpath "${1:?DATA_DIR}")
out=$(realpath -m "${2:?OUT_DIR}")
py=${3:-.venv/bin/python}
[[ $py == */* ]] && py=$(realpath -s "$py")
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${4:-1} MKL_NUM_THREADS=${4:-1} PYTHONPATH=$PWD
mkdir -p "$(dirname "$out")" && mkdir "$out" && cd "$out"

# One case: its label, then the lcodec arguments. Prints exit status, wall seconds, CPU seconds
# (user + system: what a busy machine does not inflate), peak RSS and the first line of stderr
# (and the last, when there are more).
measure() {
  local label=$1
  shift
  /usr/bin/time -f "%e %U %S %M" -o time.txt "$py" -m codec "$@" >stdout.txt 2>stderr.txt &&
    status=0 || status=$?
  read -r wall user sys kib < <(tail -n 1 time.txt)
  printf '%-42s exit %3s  %7.2f s  cpu %6.2f s  %5d MiB  %s\n' "$label" "$status" "$wall" \
    "$(awk "BEGIN { print $user + $sys }")" $((kib / 1024)) "$(head -n 1 stderr.txt)"
  if [ "$(wc -l <stderr.txt)" -gt 1 ]; then printf '%85s%s\n' "" "$(tail -n 1 stderr.txt)"; fi
}

"$py" - <<'PY'
import struct, zlib
import numpy as np
import codec
from codec.bitstream import pack, unpack

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

ihdr = struct.pack(">IIBBBBB", 16000, 16000, 8, 2, 0, 0, 0)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64)))
open("bomb.png", "wb").write(png + chunk(b"IEND", b""))
open("notes.png", "w").write("not an image\n")
# Well-formed files whose header declares 4096x4096: a 64x64 gray square's streams, the size
# fields changed and the CRC recomputed. Version 3 codes the latent in 16 bands of rows here
# (the square's one band, repeated); version 2, still read, in one stream.
gray = np.full((64, 64, 3), 128, np.uint8)
for name, version in (("huge.lcz", 3), ("huge-v2.lcz", 2)):
    c = unpack(codec.encode(gray, 0, format_version=version).data)
    c.width = c.height = 4096
    c.z_shape = (64, 64)
    c.streams = c.streams[:1] + c.streams[1:] * (16 if version == 3 else 1)
    open(name, "wb").write(pack(c))
PY
echo "bomb.png: $(stat -c %s bomb.png) bytes declaring 16000x16000"
echo "huge.lcz: $(stat -c %s huge.lcz) bytes, huge-v2.lcz: $(stat -c %s huge-v2.lcz) bytes," \
  "each declaring 4096x4096"
measure "compress bomb.png" compress bomb.png
measure "compress missing.png" compress missing.png
measure "compress notes.png (not an image)" compress notes.png
measure "decompress notes.png (not an .lcz)" decompress notes.png -o notes.out.png
measure "decompress huge.lcz --max-pixels 16000000" decompress huge.lcz --max-pixels 16000000
measure "decompress huge.lcz (default budget)" decompress huge.lcz
measure "decompress huge-v2.lcz (default budget)" decompress huge-v2.lcz

mkdir batch
find "$data" -maxdepth 1 \( -iname '*.png' -o -iname '*.jpg' \) | sort | head -n 8 |
  while read -r f; do cp "$f" batch/; done
# Interrupt the first run with SIGINT, as Ctrl-C does, once a few files are written. A job
# started in the background ignores SIGINT, so the command gets Python's handler back first.
"$py" -c 'import runpy, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.argv[0] = "lcodec"
runpy.run_module("codec", run_name="__main__")' compress batch -o archive -q 50 >/dev/null 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null && [ "$(find archive -name '*.lcz' 2>/dev/null | wc -l)" -lt 3 ]
do sleep 0.1; done
kill -INT "$pid" 2>/dev/null || true
wait "$pid" && status=0 || status=$?
echo "interrupted run: exit $status, $(find archive -name '*.lcz' | wc -l) of 8 written," \
  "$(find archive -name '.*' | wc -l) temporary files left"
measure "compress batch -o archive --skip-existing" compress batch -o archive -q 50 --skip-existing
echo "  stdout: $(head -n 1 stdout.txt); $(find archive -name '*.lcz' | wc -l) of 8 written"
measure "compress batch -o archive (once more)" compress batch -o archive -q 50

mkdir photos && cp batch/* photos/ && sha256sum photos/* >before.txt
"$py" -m codec compress photos -q 50 >/dev/null 2>&1
measure "decompress photos (in place)" decompress photos
sha256sum -c --quiet before.txt && echo "originals unchanged"
