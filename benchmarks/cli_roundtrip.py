"""Round-trip every image of a folder through the ``lcodec`` command line, as a user would.

Compresses all images with one ``lcodec compress`` call, decompresses all ``.lcz`` files with one
``lcodec decompress`` call, then checks every output against its source: same size, and the
PSNR and bpp per image.

    python -m benchmarks.cli_roundtrip --data DIR --json OUT.json [--quality 50]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .images import find_images, load_rgb


def _lcodec(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "codec", *args], check=True, capture_output=True)


def run(data: str, quality: float) -> dict:
    images = find_images(data)
    with tempfile.TemporaryDirectory() as tmp:
        lcz_dir, png_dir = Path(tmp, "lcz"), Path(tmp, "png")
        lcz_dir.mkdir()
        png_dir.mkdir()
        _lcodec("compress", *map(str, images), "-o", str(lcz_dir), "-q", str(quality))
        lczs = sorted(lcz_dir.glob("*.lcz"))
        _lcodec("decompress", *map(str, lczs), "-o", str(png_dir))
        rows = []
        for src in images:
            lcz = lcz_dir / (src.stem + ".lcz")
            out = png_dir / (src.stem + ".png")
            a, b = load_rgb(src), load_rgb(out)
            ok = a.shape == b.shape
            mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) if ok else np.nan
            rows.append(
                {
                    "image": src.name,
                    "ok": bool(ok),
                    "bpp": 8 * lcz.stat().st_size / (a.shape[0] * a.shape[1]),
                    "psnr": float(10 * np.log10(255**2 / max(mse, 1e-12))),
                }
            )
    return {
        "quality": quality,
        "images": len(rows),
        "round_trips_ok": sum(r["ok"] for r in rows),
        "mean_bpp": float(np.mean([r["bpp"] for r in rows])),
        "mean_psnr": float(np.mean([r["psnr"] for r in rows])),
        "per_image": rows,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.cli_roundtrip",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--quality", type=float, default=50)
    args = ap.parse_args(argv)
    if not find_images(args.data):
        ap.error(f"no images in {args.data}")
    result = run(args.data, args.quality)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{result['round_trips_ok']}/{result['images']} round trips ok, "
        f"mean {result['mean_bpp']:.4f} bpp, {result['mean_psnr']:.2f} dB at q={args.quality}"
    )


if __name__ == "__main__":
    main()
