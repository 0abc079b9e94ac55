"""Round-trip every image of a folder through the ``lcodec`` command line, as a user would.

Compresses all images with one ``lcodec compress`` call, decompresses all ``.lcz`` files with one
``lcodec decompress`` call, then checks every output against its source: same size, and the
PSNR and bpp per image. Times each command's whole process, start-up included, and the same
for the first image on its own: what a user waits for, where ``benchmarks.speed`` times the
library's calls in a warm process.

    python -m benchmarks.cli_roundtrip --data DIR --json OUT.json [--quality 50]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from argparse import RawDescriptionHelpFormatter
from pathlib import Path

import numpy as np

from codec import metrics

from .common.cli import Parser, UsageError
from .common.cli import run as run_cli
from .common.images import find_images, load_rgb


def _lcodec(*args: str) -> float:
    """Run one ``lcodec`` command; its wall time in seconds."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "codec", *args], check=True, capture_output=True)
    return time.perf_counter() - t0


def run(data: str, quality: float) -> dict:
    images = find_images(data)
    with tempfile.TemporaryDirectory() as tmp:
        lcz_dir, png_dir = Path(tmp, "lcz"), Path(tmp, "png")
        lcz_dir.mkdir()
        png_dir.mkdir()
        q = str(quality)
        compress_s = _lcodec("compress", *map(str, images), "-o", str(lcz_dir), "-q", q)
        lczs = sorted(lcz_dir.glob("*.lcz"))
        decompress_s = _lcodec("decompress", *map(str, lczs), "-o", str(png_dir))
        one = Path(tmp, "one.lcz")
        single = {
            "image": images[0].name,
            "compress_s": _lcodec("compress", str(images[0]), "-o", str(one), "-q", q),
            "decompress_s": _lcodec("decompress", str(one), "-o", str(Path(tmp, "one.png"))),
        }
        rows = []
        for src in images:
            lcz = lcz_dir / (src.stem + ".lcz")
            out = png_dir / (src.stem + ".png")
            a, b = load_rgb(src), load_rgb(out)
            ok = a.shape == b.shape
            rows.append(
                {
                    "image": src.name,
                    "ok": bool(ok),
                    "bpp": 8 * lcz.stat().st_size / (a.shape[0] * a.shape[1]),
                    "psnr": metrics.psnr(a, b) if ok else float("nan"),
                }
            )
    return {
        "quality": quality,
        "images": len(rows),
        "round_trips_ok": sum(r["ok"] for r in rows),
        "mean_bpp": float(np.mean([r["bpp"] for r in rows])),
        "mean_psnr": float(np.mean([r["psnr"] for r in rows])),
        "compress_s": compress_s,
        "decompress_s": decompress_s,
        "single_image": single,
        "timing": "wall seconds of each lcodec process, start-up included",
        "per_image": rows,
    }


def main(argv: list[str] | None = None) -> None:
    ap = Parser(
        prog="python -m benchmarks.cli_roundtrip",
        description=__doc__,
        formatter_class=RawDescriptionHelpFormatter,
    )
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--quality", type=float, default=50)
    args = ap.parse_args(argv)
    if not find_images(args.data):
        raise UsageError(f"no images in {args.data}")
    result = run(args.data, args.quality)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    one = result["single_image"]
    print(
        f"{result['round_trips_ok']}/{result['images']} round trips ok, "
        f"mean {result['mean_bpp']:.4f} bpp, {result['mean_psnr']:.2f} dB at q={args.quality}; "
        f"compress {result['compress_s']:.1f} s, decompress {result['decompress_s']:.1f} s "
        f"for all; one image {one['compress_s']:.1f} s and {one['decompress_s']:.1f} s"
    )


if __name__ == "__main__":
    sys.exit(run_cli("python -m benchmarks.cli_roundtrip", main, None))
