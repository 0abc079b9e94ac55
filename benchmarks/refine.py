"""What the synthesis refinement buys: the same latents with and without it, on real files.

For each photo and quality, the plain file (effort 1, or the latents effort ``--effort`` finds)
and the file the encoder makes from the same latents with the refinement it judges worth its
bytes (codec/encoder/refine.py; what every effort above 1 adds after its search), decoded by
the library: mean RD curves, BD-rate of the
refined files against the plain ones and, with ``--report``, of both against every codec of a
``benchmarks.rd`` report (the AVIF at speed 2 with 4:4:4 among them), on the same photos.

A long run goes in slices (``--skip``/``--limit``), each written with ``--json``; ``--from``
joins the slices' photos, with or without new ones, into one report. Photos are named by their
path under ``--data``, as ``benchmarks.rd`` names them under its own.

    python -m benchmarks.refine [--data DIR] [--qualities 0,15,...] [--effort N] [--skip N]
        [--limit N] [--weights NAME] [--distortion D] [--report benchmarks/results/rd/rd.json]
        [--from EARLIER.json ...] [--threads N] [--json OUT]
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Sequence

import numpy as np

from codec.hardware import cpu_model
from codec.metrics import DISTORTIONS, searched_by

from .common.bdrate import between
from .common.cli import (
    Parser,
    UsageError,
    floats,
    image_paths,
    output_file,
    run,
    warn,
    write_report,
)
from .common.curves import live_curve
from .common.images import image_name, load_rgb
from .common.metrics import bpp, ms_ssim, ms_ssim_db, psnr

PROG = "python -m benchmarks.refine"
QUALITIES = (0, 15, 30, 45, 60, 75, 90, 100)
#: What each photo's row holds per quality, and what each of its two files holds.
ROW = {"quality", "refine_seconds", "plain", "refined", "form", "refinement_bytes"}
FILES = {"bpp", "psnr", "ms_ssim"}


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="RD curves with and without the synthesis refinement.")
    p.add_argument("--data", default=None, help="folder of images (searched recursively)")
    p.add_argument(
        "--qualities",
        default=",".join(f"{q:g}" for q in QUALITIES),
        help="comma-separated qualities 0-100 (default: %(default)s)",
    )
    p.add_argument(
        "--effort", type=int, default=1, help="the effort whose latents both files carry (1-9)"
    )
    p.add_argument("--skip", type=int, default=0, help="skip the first N images (slices)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--weights", default=None, help="release name or .safetensors path")
    p.add_argument(
        "--distortion",
        choices=DISTORTIONS,
        default=None,
        help="what the search and the refinement's judgement minimise (default: the release's "
        "search distortion, codec.metrics.searched_by)",
    )
    p.add_argument(
        "--report",
        default=None,
        help="a benchmarks.rd rd.json to compare against, on its points for the same photos",
    )
    p.add_argument(
        "--from",
        dest="earlier",
        action="append",
        default=[],
        metavar="JSON",
        help="an earlier report of this benchmark (same weights, qualities, effort and "
        "distortion) whose photos join the ones measured now; repeatable",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--json", default=None, help="write the per-image and mean results here")
    return p


def measure(
    weights: str | None,
    pixels: np.ndarray,
    qualities: Sequence[float],
    iterations: int = 0,
    distortion: str | None = None,
) -> list[dict]:
    """Per quality: bpp, PSNR and MS-SSIM of the file without the refinement (latents after
    ``iterations`` steps of effort searching by ``distortion``) and of the refined one (both
    decoded by the library), the refinement's form and bytes, and the seconds the fit and
    judgement took."""
    import codec
    from codec.encoder.analysis import prepare
    from codec.image import read_image

    a = prepare(read_image(pixels), weights, "cpu", None, None, distortion=distortion)
    rows = []
    for q in qualities:
        plain = a.trial(q, iterations)
        start = time.perf_counter()
        refined, _ = a.refined(plain)
        seconds = time.perf_counter() - start
        row = {"quality": q, "refine_seconds": seconds}
        for key, t in (("plain", plain), ("refined", refined)):
            rec = codec.decode(t.data, device="cpu", weights=weights).pixels
            row[key] = {
                "bpp": bpp(len(t.data), a.height, a.width),
                "psnr": psnr(pixels, rec),
                "ms_ssim": ms_ssim(pixels, rec),
            }
        r = refined.refinement
        row["form"] = None if r is None else r.form
        row["refinement_bytes"] = 0 if r is None else len(r.pack())
        rows.append(row)
    return rows


def mean_point(rows: Sequence[dict]) -> dict[str, float]:
    """The mean of one quality's photos as ``benchmarks.rd`` takes it: bpp and PSNR over every
    photo (NaN where one has none, as for a lossless PSNR), MS-SSIM in dB of the mean MS-SSIM
    over the photos large enough to have one."""

    def every(key: str) -> float:
        values = [math.nan if r[key] is None else r[key] for r in rows]
        m = statistics.fmean(values)
        return m if math.isfinite(m) else math.nan

    ms = [r["ms_ssim"] for r in rows if r["ms_ssim"] is not None and math.isfinite(r["ms_ssim"])]
    return {
        "bpp": every("bpp"),
        "psnr": every("psnr"),
        "ms_ssim_db": ms_ssim_db(statistics.fmean(ms)) if ms else math.nan,
    }


def mean_curve(per_image: dict[str, list[dict]], key: str) -> dict[str, list[float]]:
    """The mean point per quality of the files ``key`` names ("plain" or "refined")."""
    points = list(zip(*per_image.values()))
    curve = {"quality": [pts[0]["quality"] for pts in points], "bpp": [], "psnr": []}
    curve["ms_ssim_db"] = []
    for pts in points:
        for metric, value in mean_point([p[key] for p in pts]).items():
            curve[metric].append(value)
    return curve


def report_curves(path: str, names: set[str]) -> dict[str, dict]:
    """Every codec's mean curve in a ``benchmarks.rd`` report over the photos ``names``, keyed
    by the codec's name: a slice is set against the same photos, not the report's whole set.
    A codec whose points carry no per-photo results (a published curve) is taken as it is,
    with a warning."""
    try:
        with open(path) as f:
            codecs = json.load(f)["codecs"]
        curves = {}
        for name, entry in codecs.items():
            points = entry["points"]
            if points and all("images" in pt for pt in points):
                entry = {**entry, "points": [_same_photos(name, pt, names) for pt in points]}
            else:
                warn(PROG, f"{name} in {path} has no per-photo results: its own mean is used")
            curves[name] = live_curve(name, entry)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"cannot read the report {path}: {e}") from None
    return {
        name: {"bpp": c.bpp, "psnr": c.psnr, "ms_ssim_db": c.ms_ssim_db}
        for name, c in curves.items()
    }


def _same_photos(codec_name: str, point: dict, names: set[str]) -> dict:
    """A report's point as the mean over the photos ``names`` alone."""
    rows = {r["image"]: r for r in point["images"]}
    missing = sorted(names - set(rows))
    if missing:
        raise ValueError(
            f"{codec_name} has no result for {missing[0]} at quality {point['quality']}"
        )
    return mean_point([rows[n] for n in sorted(names)])


def earlier_results(paths: Sequence[str], config: dict) -> dict[str, list[dict]]:
    """The per-photo rows of earlier reports, each made as ``config`` says (weights,
    qualities, effort and distortion); a photo found twice is refused, not counted twice, and
    a value written as null reads as NaN again."""
    per_image: dict[str, list[dict]] = {}
    for path in paths:
        try:
            with open(path) as f:
                report = json.load(f)
            theirs, rows = report["config"], report["per_image"]
            for key, ours in config.items():
                if theirs.get(key) != ours:
                    raise UsageError(
                        f"{path} was made with {key} {theirs.get(key)!r}, not {ours!r}"
                    )
            for name, points in rows.items():
                if [pt["quality"] for pt in points] != config["qualities"]:
                    raise UsageError(f"{path}: {name}'s qualities are not its report's")
                for pt in points:
                    sides = (pt["plain"], pt["refined"])
                    lacking = (ROW - set(pt)) | {k for side in sides for k in FILES - set(side)}
                    if lacking:
                        raise UsageError(f"{path}: {name} has no {min(lacking)}")
                    for side in sides:  # a non-finite value was written as null
                        side.update({k: math.nan for k, v in side.items() if v is None})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise UsageError(f"cannot read the earlier report {path}: {e}") from None
        for name, points in rows.items():
            if name in per_image:
                raise UsageError(f"{name} is in more than one report (second: {path})")
            per_image[name] = points
    return per_image


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    out = output_file(args.json) if args.json else None
    if args.data is None and not args.earlier:
        raise UsageError("give --data, --from or both")
    if args.data is None and (args.skip or args.limit is not None):
        raise UsageError("--skip and --limit choose from --data's images: give --data")
    root, paths = image_paths(args.data, args.limit, args.skip) if args.data else (None, [])
    qualities = floats(args.qualities, "--qualities")
    if not all(0 <= q <= 100 for q in qualities):
        raise UsageError("--qualities must be from 0 to 100")
    if not 1 <= args.effort <= 9:
        raise UsageError("--effort must be from 1 to 9")
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
    from codec.encoder.effort import effort_iterations

    iterations = effort_iterations(args.effort)
    distortion = args.distortion or searched_by(lm.weights.distortion)
    made_as = {  # what a report's rows depend on: earlier ones must match it to join
        "model": lm.weights.model_id,
        "qualities": qualities,
        "effort": args.effort,
        "distortion": distortion,
    }
    per_image = earlier_results(args.earlier, made_as)
    names = [image_name(path, root) for path in paths]
    for name in names:
        if name in per_image:
            raise UsageError(f"{name} is already in an earlier report")
    others = report_curves(args.report, {*per_image, *names}) if args.report else {}
    for name, path in zip(names, paths):
        per_image[name] = measure(args.weights, load_rgb(path), qualities, iterations, distortion)
        print(f"{name}: done", file=sys.stderr, flush=True)
    curves = {key: mean_curve(per_image, key) for key in ("plain", "refined")}
    points = list(zip(*per_image.values()))
    print(
        f"{len(per_image)} images ({len(paths)} measured now), {lm.weights.model_id}, "
        f"effort {args.effort}, searching by {distortion}"
    )
    print("| quality | refined files | refinement bytes | bpp | PSNR | MS-SSIM (dB) | fit s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for i, pts in enumerate(points):
        c, p = curves["refined"], curves["plain"]
        used = [x["refinement_bytes"] for x in pts if x["form"] is not None]
        print(
            f"| {pts[0]['quality']:g} | {len(used)}/{len(pts)} "
            f"| {statistics.fmean(used) if used else 0:.0f} "
            f"| {p['bpp'][i]:.4f} → {c['bpp'][i]:.4f} "
            f"| {p['psnr'][i]:.3f} → {c['psnr'][i]:.3f} "
            f"| {p['ms_ssim_db'][i]:.3f} → {c['ms_ssim_db'][i]:.3f} "
            f"| {statistics.fmean(x['refine_seconds'] for x in pts):.2f} |"
        )
    results = {"refined vs plain": between(curves["plain"], curves["refined"])}
    for name, curve in others.items():
        for key in ("plain", "refined"):
            results[f"{key} vs {name}"] = between(curve, curves[key])
    for label, r in results.items():
        print(f"BD-rate {label}: PSNR {r['psnr']:+.2f} %, MS-SSIM {r['ms_ssim_db']:+.2f} %")
    if out is not None:
        report = {
            "config": {
                "data": None if root is None else str(root),
                "from": list(args.earlier),
                "images": len(per_image),
                **made_as,
                "report": args.report,
                "cpu": cpu_model(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            },
            "curves": curves,
            "bd_rate": results,
            "per_image": per_image,
        }
        write_report(report, out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a one-line message on bad arguments)."""
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
