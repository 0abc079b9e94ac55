"""Two or more sets of weights on the same photos: mean RD curves and BD-rates against the first.

For comparisons between training runs (float32 against bf16, a moving average against the last
weights, a new release against the default): every point is a real file, encoded and decoded
by the library, measured as ``benchmarks.rd`` measures lcodec.

    python -m benchmarks.weights_ab --data DIR --weights A.safetensors --weights B.safetensors
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from codec.hardware import cpu_model

from .common.bdrate import between
from .common.cli import Parser, image_paths, run
from .common.images import load_rgb
from .common.jsonutil import write_json
from .common.metrics import bpp, ms_ssim, ms_ssim_db, psnr

PROG = "python -m benchmarks.weights_ab"
QUALITIES = (0, 10, 25, 40, 55, 70, 85, 100)


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="BD-rates between sets of lcodec weights.")
    p.add_argument("--data", required=True, help="folder of images (searched recursively)")
    p.add_argument(
        "--weights",
        action="append",
        required=True,
        help="release name or .safetensors path; repeat; the first is the anchor",
    )
    p.add_argument("--label", action="append", default=[], help="a label per --weights")
    p.add_argument("--qualities", default=",".join(map(str, QUALITIES)))
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--json", default=None, help="write the curves and BD-rates here")
    return p


def measure(weights: str, images: list[np.ndarray], qualities: Sequence[float]) -> dict:
    """Mean bpp, PSNR-RGB and MS-SSIM (dB) per quality, from real files."""
    import codec

    curve = {"quality": list(qualities), "bpp": [], "psnr": [], "ms_ssim_db": []}
    for q in qualities:
        rows = []
        for img in images:
            data = codec.compress(img, q, device="cpu", weights=weights)
            rec = codec.decompress(data, device="cpu", weights=weights, mode="RGB")
            rows.append((bpp(len(data), *img.shape[:2]), psnr(img, rec), ms_ssim(img, rec)))
        b, p, m = (float(np.mean(col)) for col in zip(*rows))
        curve["bpp"].append(b)
        curve["psnr"].append(p)
        curve["ms_ssim_db"].append(ms_ssim_db(m) if math.isfinite(m) else math.nan)
        print(f"  {Path(weights).stem} q{q:g}: {b:.4f} bpp, {p:.3f} dB", file=sys.stderr)
    return curve


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    root, paths = image_paths(args.data, args.limit)
    images = [load_rgb(p) for p in paths]
    qualities = [float(q) for q in args.qualities.split(",")]
    labels = args.label + [Path(w).stem for w in args.weights[len(args.label) :]]
    curves = {label: measure(w, images, qualities) for label, w in zip(labels, args.weights)}
    print(f"{len(images)} images of {root}; BD-rate of each against each earlier one")
    print("(negative: fewer bits for the same quality)")
    results = {}
    for i, label in enumerate(labels):
        for earlier in labels[:i]:
            bd = between(curves[earlier], curves[label])
            results[f"{label} vs {earlier}"] = bd
            print(
                f"{label:>16} vs {earlier:<16}: PSNR {bd['psnr']:+.2f} %, "
                f"MS-SSIM {bd['ms_ssim_db']:+.2f} %"
            )
    if args.json:
        write_json(
            {
                "data": str(root),
                "images": len(images),
                "weights": dict(zip(labels, args.weights)),
                "curves": curves,
                "bd_rate": results,
                "machine": cpu_model(),
                "threads": torch.get_num_threads(),
            },
            args.json,
        )
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main, None))
