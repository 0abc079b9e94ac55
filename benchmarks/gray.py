"""What gray images cost: a gray photo is coded through the RGB network as three equal channels.

    python -m benchmarks.gray --data DIR [--quality 50] [--limit N] [--json OUT.json]

For every photo: the bytes of its gray version (Pillow's ``L``), of the same gray replicated
into an RGB array, and of the colour original, with the PSNR of the gray decode (the rounded
mean of the three decoded channels) against the gray input, and what taking the first decoded
channel instead would have given.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from codec.metrics import psnr

from .common.cli import Parser, UsageError, run
from .common.images import find_images, image_name, load_rgb
from .common.jsonutil import write_json

PROG = "python -m benchmarks.gray"


def main(argv: Sequence[str] | None = None) -> int:
    p = Parser(prog=PROG, description="Bytes of gray images against RGB ones.")
    p.add_argument("--data", required=True, help="folder of photos")
    p.add_argument("--quality", type=float, default=50.0)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--json", default=None, help="where to write the per-image results")
    args = p.parse_args(argv)
    import torch
    from PIL import Image

    import codec

    paths = find_images(args.data, args.limit)
    if not paths:
        raise UsageError(f"no PNG or JPEG images in {args.data}")
    rows = []
    for path in paths:
        rgb = load_rgb(path)
        gray = np.asarray(Image.fromarray(rgb).convert("L"))
        with torch.inference_mode():
            gray_data = codec.compress(gray, args.quality)
            replicated = codec.compress(np.repeat(gray[:, :, None], 3, axis=2), args.quality)
            colour = codec.compress(rgb, args.quality)
            decoded = codec.decompress(gray_data)
            first = codec.decompress(replicated)[:, :, 0]
        rows.append(
            {
                "image": image_name(path, args.data),
                "gray_bytes": len(gray_data),
                "gray_as_rgb_bytes": len(replicated),
                "colour_bytes": len(colour),
                "gray_psnr": psnr(gray, decoded),
                "gray_psnr_first_channel": psnr(gray, first),
            }
        )
        print(rows[-1], flush=True)
    total = {
        k: sum(r[k] for r in rows) for k in ("gray_bytes", "gray_as_rgb_bytes", "colour_bytes")
    }
    summary = {
        "images": len(rows),
        "quality": args.quality,
        **total,
        "gray_over_colour": total["gray_bytes"] / total["colour_bytes"],
        "mean_gray_psnr": float(np.mean([r["gray_psnr"] for r in rows])),
        "mean_gray_psnr_first_channel": float(
            np.mean([r["gray_psnr_first_channel"] for r in rows])
        ),
    }
    print(summary)
    if args.json:
        write_json({"summary": summary, "images": rows}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(run(PROG, main, None))
