"""Encode on one device, decode on the other: CUDA -> CPU and CPU -> CUDA, every image and quality.

A case fails when decoding raises, when the decoded latents differ from those decoded on the
encoding device (they must be bit-identical), or when a pixel differs from the encoder's own
reconstruction by more than ``--max-pixel-diff`` (rounding in the synthesis transform).

    python -m benchmarks.cross_device --data DIR --json OUT.json [--qualities 10,30,50,70,90]
"""

from __future__ import annotations

import json
import sys
from argparse import RawDescriptionHelpFormatter
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import codec
from codec import bitstream

from .common.cli import Parser
from .common.cli import run as run_cli
from .common.images import find_images, load_rgb


def _latents(data: bytes, device: str) -> torch.Tensor:
    c = bitstream.unpack(data)
    lm = codec.load_model(device=device)
    with torch.inference_mode():
        return lm.coder.decode(c.streams, c.z_shape, c.version).cpu()


def run(data: str, qualities: list[float], limit: int | None, max_diff: int) -> dict:
    if not torch.cuda.is_available():
        raise SystemExit("cross_device: no CUDA device")
    cases, failures, worst = 0, [], 0
    for path in tqdm(find_images(data, limit), desc="cross-device"):
        img = load_rgb(path)
        for q in qualities:
            for enc_dev, dec_dev in (("cuda", "cpu"), ("cpu", "cuda")):
                cases += 1
                try:
                    enc = codec.encode(img, q, device=enc_dev)
                    out = codec.decompress(enc.data, device=dec_dev)
                    same = torch.equal(_latents(enc.data, enc_dev), _latents(enc.data, dec_dev))
                    diff = int(np.abs(out.astype(int) - enc.reconstruction.astype(int)).max())
                    worst = max(worst, diff)
                    if not same or diff > max_diff:
                        failures.append(
                            {
                                "image": path.name,
                                "quality": q,
                                "from": enc_dev,
                                "to": dec_dev,
                                "latents_equal": same,
                                "max_diff": diff,
                            }
                        )
                except codec.CodecError as e:
                    failures.append(
                        {
                            "image": path.name,
                            "quality": q,
                            "from": enc_dev,
                            "to": dec_dev,
                            "error": str(e),
                        }
                    )
    return {
        "cases": cases,
        "failures": len(failures),
        "failed_cases": failures,
        "max_pixel_diff_seen": worst,
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    ap = Parser(
        prog="python -m benchmarks.cross_device",
        description=__doc__,
        formatter_class=RawDescriptionHelpFormatter,
    )
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--qualities", default="10,30,50,70,90")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--max-pixel-diff", type=int, default=2)
    args = ap.parse_args(argv)
    qualities = [float(q) for q in args.qualities.split(",")]
    result = run(args.data, qualities, args.limit, args.max_pixel_diff)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{result['cases']} cases, {result['failures']} failures, "
        f"max pixel difference {result['max_pixel_diff_seen']}"
    )


if __name__ == "__main__":
    sys.exit(run_cli("python -m benchmarks.cross_device", main, None))
