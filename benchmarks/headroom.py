"""How much of the distortion is quantization, and how much the transforms themselves.

At each quality: the real file's bpp and PSNR (effort 1), and the PSNR of the same synthesis fed
the same latent at that quality's gains *without* rounding: what these transforms give at those
gains however many bits were spent. Where the two meet, more bits buy little and only better
transforms help: the top of the RD curve bends there. For a context model, also the bits each
channel group of the latent costs (the model's likelihoods of the rounded latent): whether the
last channels are still idle at the top of the range, or the latent is full.

    python -m benchmarks.headroom --data DIR [--qualities 0,50,100] [--limit N] \\
        [--weights NAME] [--threads N] [--json OUT.json]
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence

import numpy as np

from codec.hardware import cpu_model

from .common.cli import (
    Parser,
    UsageError,
    floats,
    image_paths,
    output_file,
    run,
    write_report,
)
from .common.images import image_name, load_rgb
from .common.metrics import bpp, psnr

PROG = "python -m benchmarks.headroom"
QUALITIES = (0, 25, 50, 75, 87.5, 100)
GROUP_BPP = (
    "bits per pixel of each channel group of the latent at the quality's gains, from "
    "the model's likelihoods of the rounded latent (padding included)"
)


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="File PSNR against the transforms' own ceiling.")
    p.add_argument("--data", required=True, help="folder of images (searched recursively)")
    p.add_argument(
        "--qualities",
        default=",".join(f"{q:g}" for q in QUALITIES),
        help="comma-separated qualities 0-100 (default: %(default)s)",
    )
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--weights", default=None, help="release name or .safetensors path")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--json", default=None, help="write the per-image and mean results here")
    return p


def measure(weights: str | None, pixels: np.ndarray, qualities: Sequence[float]) -> list[dict]:
    """Per quality: the file's bpp and PSNR, and the unrounded latent's PSNR, all from one
    analysis, the one ``encode`` runs."""
    import torch

    from codec.encoder.analysis import prepare
    from codec.image import read_image
    from codec.net.tiling import synthesize

    a = prepare(read_image(pixels), weights, "cpu", None, None)
    rows = []
    for q in qualities:
        trial = a.trial(q)
        rate = torch.tensor([a.rate_of(q)], device=a.device)
        with torch.no_grad():
            gain, inv_gain = a.model.gains(rate)
            y = a.latent * gain
            ceiling = synthesize(a.model, y, inv_gain, a.height, a.width)
        row = {
            "quality": q,
            "bpp": bpp(len(trial.data), a.height, a.width),
            "psnr": psnr(pixels, a.reconstruction(trial)),
            "psnr_unrounded": psnr(pixels, ceiling),
        }
        if hasattr(a.model, "groups"):
            row["group_bpp"] = group_bpp(a.model, y, a.height * a.width)
        rows.append(row)
    return rows


def group_bpp(model, y, pixels: int) -> list[float]:
    """Bits per pixel each channel group of the gained latent ``y`` costs (padding included)."""
    import torch

    with torch.no_grad():
        lik = model.entropy_forward(y, hard=True)["likelihoods"]["y"]
    bits = -torch.log2(lik).sum((0, 2, 3))
    return [float(g.sum()) / pixels for g in torch.split(bits, list(model.groups))]


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    out = output_file(args.json) if args.json else None
    root, paths = image_paths(args.data, args.limit)
    qualities = floats(args.qualities, "--qualities")
    if not all(0 <= q <= 100 for q in qualities):
        raise UsageError("--qualities must be from 0 to 100")

    import torch

    import codec

    if args.threads is not None:
        if args.threads < 1:
            raise UsageError("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    try:
        lm = codec.load_model(device="cpu", weights=args.weights)
    except codec.CodecError as e:
        raise UsageError(f"cannot load lcodec's model: {e}") from None
    per_image = {}
    for path in paths:
        name = image_name(path, root)
        per_image[name] = measure(args.weights, load_rgb(path), qualities)
        print(f"{name}: done", file=sys.stderr, flush=True)
    mean = [
        {
            "quality": pts[0]["quality"],
            **{k: statistics.fmean(p[k] for p in pts) for k in ("bpp", "psnr", "psnr_unrounded")},
            **(
                {"group_bpp": [statistics.fmean(v) for v in zip(*(p["group_bpp"] for p in pts))]}
                if "group_bpp" in pts[0]
                else {}
            ),
        }
        for pts in zip(*per_image.values())
    ]
    groups = "group_bpp" in mean[0]  # one model for every image
    extra = " bpp of each channel group |" if groups else ""
    print(f"| quality | bpp | PSNR of the file | PSNR unrounded | gap |{extra}")
    print("|---" * (5 + bool(groups)) + "|")
    for p in mean:
        gap = p["psnr_unrounded"] - p["psnr"]
        cells = " " + " / ".join(f"{v:.3f}" for v in p["group_bpp"]) + " |" if groups else ""
        print(
            f"| {p['quality']:g} | {p['bpp']:.4f} | {p['psnr']:.2f} dB "
            f"| {p['psnr_unrounded']:.2f} dB | {gap:.2f} dB |{cells}"
        )
    if out is not None:
        report = {
            "config": {
                "data": str(root),
                "images": len(per_image),
                "model": lm.weights.model_id,
                "qualities": qualities,
                "cpu": cpu_model(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "psnr_unrounded": "PSNR-RGB of the 8-bit synthesis of g_a(x) * gain * inverse "
                "gain at the quality's rate, no rounding: the transforms' ceiling at those gains",
                **({"group_bpp": GROUP_BPP} if groups else {}),
            },
            "mean": mean,
            "per_image": per_image,
        }
        write_report(report, out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a one-line message on bad arguments)."""
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
