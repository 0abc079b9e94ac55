"""Half-precision transforms against float32: pixel error, file size, quality and speed.

For every image and quality the same quantized latents go through the float32 and the float16
(or ``--precision bfloat16``) synthesis; the error is measured before rounding (in 8-bit
levels), so "below half a level" means that at most a pixel sitting on a rounding boundary
flips by one. The files each precision writes are then compared (bpp, PSNR), and encode and
decode are timed per precision.

    python -m benchmarks.precision --data DIR --json OUT.json [--device cuda] [--limit N]
        [--precision float16|bfloat16]
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from .common.cli import Parser, UsageError, image_paths, run
from .common.images import image_name, load_rgb
from .common.jsonutil import write_json

PROG = "python -m benchmarks.precision"


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="float16 or bfloat16 transforms against float32.")
    p.add_argument(
        "--precision",
        default="float16",
        choices=("float16", "bfloat16"),
        help="the precision compared with float32 (default float16)",
    )
    p.add_argument("--data", required=True, help="folder of PNG/JPEG images (searched recursively)")
    p.add_argument("--json", required=True, help="where to write the results")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--qualities", default="0,50,100", help="comma-separated (default 0,50,100)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per file (default 3)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def synthesis_error(full, half, img, rate: float) -> dict:
    """Levels between float32 and lower-precision synthesis of the same latents, before
    rounding."""
    import torch

    dev = full.device
    x = torch.from_numpy(img).to(dev).permute(2, 0, 1)[None].float().div_(255)
    h, w = img.shape[:2]
    ph, pw = -(-h // 64) * 64, -(-w // 64) * 64
    x = torch.nn.functional.pad(x, (0, pw - w, 0, ph - h), mode="replicate")
    with torch.no_grad():
        gain, inv_gain = full.model.gains(torch.tensor([rate], device=dev))
        y_hat = torch.round(full.model.g_a(x) * gain) * inv_gain
        ref = full.model.g_s(y_hat)[..., :h, :w].clamp_(0, 1)
        out = half.model.g_s(y_hat)[..., :h, :w].clamp_(0, 1)
    levels = (out - ref).abs_().mul_(255)
    flipped = (out * 255).round_() != (ref * 255).round_()
    return {
        "max_levels": levels.max().item(),
        "mean_levels": levels.mean().item(),
        "flipped_fraction": flipped.float().mean().item(),
        "finite": bool(torch.isfinite(out).all()),
    }


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    root, paths = image_paths(args.data, args.limit)
    try:
        qualities = [float(q) for q in args.qualities.split(",")]
    except ValueError:
        raise UsageError(f"--qualities must be numbers, got {args.qualities!r}") from None
    if not qualities or not all(0 <= q <= 100 for q in qualities):
        raise UsageError("--qualities must be from 0 to 100")
    if args.repeats < 1:
        raise UsageError("--repeats must be at least 1")

    import torch
    from tqdm import tqdm

    import codec
    from codec.hardware import cpu_model
    from codec.net.ladder import quality_to_rate

    from .common.metrics import bpp, psnr
    from .common.reference import synchronize
    from .common.timing import timed

    if args.threads:
        torch.set_num_threads(args.threads)
    device = None if args.device == "auto" else args.device
    try:
        full = codec.load_model(device=device, precision="float32")
        half = codec.load_model(device=device, precision=args.precision)
    except codec.CodecError as e:
        raise UsageError(str(e)) from None

    def sync() -> None:
        synchronize(full.device)

    rows = []
    jobs = [(p, q) for p in paths for q in qualities]
    for path, q in tqdm(jobs, desc="precision", disable=args.no_progress, file=sys.stderr):
        img = load_rgb(path)
        h, w = img.shape[:2]
        row = {"image": image_name(path, root), "quality": q, "megapixels": h * w / 1e6}
        row["synthesis"] = synthesis_error(full, half, img, quality_to_rate(q, full.model.levels))
        for name in ("float32", args.precision):
            opts = {"device": device, "precision": name}
            data, enc_s = timed(partial(codec.compress, img, q, **opts), args.repeats, sync)
            rec, dec_s = timed(partial(codec.decompress, data, **opts), args.repeats, sync)
            row[name] = {
                "bpp": bpp(len(data), h, w),
                "psnr": psnr(img, rec),
                "enc_s": enc_s,
                "dec_s": dec_s,
            }
        rows.append(row)

    mpx = sum(r["megapixels"] for r in rows)
    summary = {
        "max_levels": max(r["synthesis"]["max_levels"] for r in rows),
        "mean_levels": statistics.mean(r["synthesis"]["mean_levels"] for r in rows),
        "flipped_fraction": statistics.mean(r["synthesis"]["flipped_fraction"] for r in rows),
        "all_finite": all(r["synthesis"]["finite"] for r in rows),
        "below_rounding": all(r["synthesis"]["max_levels"] < 0.5 for r in rows),
    }
    for name in ("float32", args.precision):
        summary[name] = {
            "bpp_mean": statistics.mean(r[name]["bpp"] for r in rows),
            "psnr_mean": statistics.mean(r[name]["psnr"] for r in rows),
            "enc_mpx_per_s": mpx / sum(r[name]["enc_s"] for r in rows),
            "dec_mpx_per_s": mpx / sum(r[name]["dec_s"] for r in rows),
        }
    dev = full.device
    report = {
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "precision": args.precision,
        "qualities": qualities,
        "timing": "median of the repeats after one untimed warm-up, API calls end to end",
        "summary": summary,
        "images": rows,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(report, out)
    f16, f32 = summary[args.precision], summary["float32"]
    print(
        f"{args.precision}: max {summary['max_levels']:.3f} levels before rounding "
        f"({100 * summary['flipped_fraction']:.2f} % of values flip), "
        f"PSNR {f16['psnr_mean'] - f32['psnr_mean']:+.3f} dB, "
        f"decode {f16['dec_mpx_per_s']:.2f} vs {f32['dec_mpx_per_s']:.2f} MP/s; wrote {out}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a one-line message on bad arguments)."""
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
