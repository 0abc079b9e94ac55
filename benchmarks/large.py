"""Large images in bounded memory: peak RSS of the command line on a big photo, and what tiling
costs in quality.

    python -m benchmarks.large --data DIR --out OUT [--size 6000x4000] [--quality 50]
        [--effort 1] [--threads 1] [--compare 2048x1536] [--skip-large]

The big image is a mosaic of the photos in ``DIR`` (each flipped in turn, so that the mosaic
is not one photo repeated), written to ``OUT/large.png``. ``lcodec compress`` and
``lcodec decompress`` then run on it as separate processes under ``/usr/bin/time -v``, whose
"Maximum resident set size" is the peak RSS reported. ``--compare`` encodes and decodes a
crop of that size twice in this process, tiled (the default) and in one piece, and reports
both PSNRs and writes ``OUT/tiling_diff.png``, the absolute difference of the two
reconstructions times 16, with the tile borders of the analysis and synthesis marked in red.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from codec.metrics import psnr

from .common.cli import Parser, UsageError, run
from .common.images import find_images, load_rgb
from .common.jsonutil import write_json

PROG = "python -m benchmarks.large"
Image.MAX_IMAGE_PIXELS = None  # the images here are big on purpose


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="Peak memory on a large image; tiled vs untiled PSNR.")
    p.add_argument("--data", required=True, help="folder of photos to build the image from")
    p.add_argument("--out", required=True, help="folder for the image, the files and large.json")
    p.add_argument("--size", default="6000x4000", help="WIDTHxHEIGHT (default 6000x4000)")
    p.add_argument("--quality", type=float, default=50.0)
    p.add_argument("--effort", type=int, default=1, help="encoder effort of the compress run")
    p.add_argument("--threads", type=int, default=1, help="CPU threads of the codec processes")
    p.add_argument("--compare", default=None, help="WIDTHxHEIGHT crop for tiled vs untiled")
    p.add_argument("--skip-large", action="store_true", help="only the tiling comparison")
    return p


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m:
        raise UsageError(f"size must be WIDTHxHEIGHT, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def mosaic(photos: list[Path], width: int, height: int) -> np.ndarray:
    """A ``height x width`` RGB mosaic of the photos, flipped in turn."""
    out = np.empty((height, width, 3), np.uint8)
    k, y = 0, 0
    while y < height:
        x, row_h = 0, 0
        while x < width:
            tile = load_rgb(photos[k % len(photos)])
            if (k // len(photos)) % 2:
                tile = tile[:, ::-1]
            if (k // (2 * len(photos))) % 2:
                tile = tile[::-1]
            h, w = min(tile.shape[0], height - y), min(tile.shape[1], width - x)
            out[y : y + h, x : x + w] = tile[:h, :w]
            x, row_h, k = x + w, max(row_h, h), k + 1
        y += row_h
    return out


def timed_command(args: list[str], threads: int) -> dict:
    """Run ``args`` under ``/usr/bin/time -v``: wall and CPU seconds (user + system, which a
    busy machine does not inflate), peak RSS in MiB."""
    env_cmd = ["env", f"OMP_NUM_THREADS={threads}", f"MKL_NUM_THREADS={threads}"]
    start = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-v", *env_cmd, *args], capture_output=True, text=True)
    wall = time.monotonic() - start
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    cpu = re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", r.stderr)
    if r.returncode != 0 or not m:
        raise UsageError(f"{' '.join(args)} failed: {r.stderr.strip().splitlines()[:3]}")
    return {
        "command": " ".join(["/usr/bin/time", "-v", *env_cmd, *args]),
        "seconds": round(wall, 1),
        "cpu_seconds": round(sum(map(float, cpu)), 1),
        "peak_rss_mib": round(int(m.group(1)) / 1024, 1),
    }


def large(
    out: Path,
    photos: list[Path],
    size: tuple[int, int],
    quality: float,
    threads: int,
    effort: int = 1,
):
    width, height = size
    src, lcz, back = out / "large.png", out / "large.lcz", out / "large.out.png"
    if not src.is_file() or Image.open(src).size != (width, height):
        Image.fromarray(mosaic(photos, width, height)).save(src, compress_level=1)
    # The image is big on purpose: a pixel budget of exactly its size lets it through.
    py = [sys.executable, "-m", "codec"]
    budget = ["--max-pixels", str(width * height)]
    enc = timed_command(
        [*py, "compress", str(src), "-o", str(lcz), "-q", str(quality), "-f", *budget]
        + ["--effort", str(effort)],
        threads,
    )
    dec = timed_command([*py, "decompress", str(lcz), "-o", str(back), "-f", *budget], threads)
    original = np.asarray(Image.open(src).convert("RGB"))
    decoded = np.asarray(Image.open(back).convert("RGB"))
    return {
        "size": f"{width}x{height}",
        "megapixels": round(width * height / 1e6, 2),
        "effort": effort,
        "bytes": lcz.stat().st_size,
        "bpp": 8 * lcz.stat().st_size / (width * height),
        "psnr": psnr(original, decoded),
        "compress": enc,
        "decompress": dec,
    }


def compare(out: Path, photos: list[Path], size: tuple[int, int], quality: float) -> dict:
    """Encode and decode a crop tiled and in one piece; PSNR of both, and the difference."""
    import torch

    import codec
    from codec.net import tiling

    width, height = size
    img = mosaic(photos, width, height)
    results, recon = {}, {}
    for name, tile in (("tiled", tiling.TILE), ("untiled", 1 << 17)):
        saved = tiling.TILE
        tiling.TILE = tile
        try:
            with torch.inference_mode():
                start = time.monotonic()
                enc = codec.encode(img, quality)
                recon[name] = codec.decompress(enc.data)
        finally:
            tiling.TILE = saved
        assert np.array_equal(recon[name], enc.reconstruction)
        results[name] = {
            "bytes": len(enc.data),
            "psnr": psnr(img, recon[name]),
            "seconds": round(time.monotonic() - start, 1),
        }
    diff = np.abs(recon["tiled"].astype(np.int16) - recon["untiled"].astype(np.int16))
    view = np.clip(diff * 16, 0, 255).astype(np.uint8)
    for a, _ in tiling.spans(height + (-height) % 64, tiling.TILE, 64)[1:]:
        view[min(a, height - 1), :, 0] = 255
    for a, _ in tiling.spans(width + (-width) % 64, tiling.TILE, 64)[1:]:
        view[:, min(a, width - 1), 0] = 255
    Image.fromarray(view).save(out / "tiling_diff.png")
    return {
        "size": f"{width}x{height}",
        "tile": tiling.TILE,
        "halo": tiling.HALO,
        **results,
        "psnr_difference_db": results["tiled"]["psnr"] - results["untiled"]["psnr"],
        "max_abs_pixel_difference": int(diff.max()),
        "pixels_that_differ": float(np.mean(diff.max(axis=2) > 0)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    photos = find_images(args.data)
    if not photos:
        raise UsageError(f"no PNG or JPEG images in {args.data}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {}
    if args.compare:
        report["tiling"] = compare(out, photos, parse_size(args.compare), args.quality)
        print(report["tiling"], flush=True)
    if not args.skip_large:
        if not Path("/usr/bin/time").is_file():
            raise UsageError("needs /usr/bin/time (GNU time) to measure peak RSS")
        report["large"] = large(
            out, photos, parse_size(args.size), args.quality, args.threads, args.effort
        )
        print(report["large"], flush=True)
    write_json(report, out / "large.json")
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main, None))
