"""Encoder effort and rate control: what higher ``--effort`` buys, and how well targets are hit.

Whole photos by default. Per effort level: the RD curve over ``--qualities`` (bpp from
whole-file bytes, PSNR and MS-SSIM of the reconstruction the decoder produces), the RD loss
effort minimises (λ times the ``--tune``'s distortion, else the release's own, + bpp), encode
seconds per megapixel, the peak memory of an encode, and the BD-rate against effort 1 in PSNR
and in MS-SSIM (dB) (``bjontegaard``, Akima, on the mean curves, plus the mean of per-image
BD-rates). Then, at effort 1 and unless
``--no-targets``, every bpp, size and PSNR target over every image: relative (or dB) error of
the value reached, and how many targets were missed and why.

    python -m benchmarks.effort --data DIR --json OUT.json [--efforts 1,2,3] \\
        [--qualities 20,50,80] [--limit N] [--skip N] [--crop N] [--threads N] [--no-targets] \\
        [--separate] [--steer auto|float32|bfloat16] [--tune psnr|ms-ssim]
    python -m benchmarks.effort --merge RUN1.json RUN2.json ... --json OUT.json
    ... --against benchmarks/results/rd/rd.json[:CODEC]

A measurement too long for one sitting runs in slices (``--skip 2 --limit 2`` is the third and
fourth image) that ``--merge`` joins into one report, the summary recomputed over all images.

``--against`` answers "which effort does it take to beat AVIF?": the BD-rate of every level
against another codec's curve from a ``benchmarks.rd`` report, on the images both measured
(the report's kept AVIF unless ``:CODEC`` names another of its codecs).

Every level's file comes from one search per image and quality (``codec.encode_efforts``:
the same bytes ``encode`` writes at that level), so all nine levels cost what level 9 alone
does; ``--separate`` encodes each level on its own instead.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from codec.hardware import cpu_model
from codec.metrics import MS_SSIM_MIN_SIDE, MS_SSIM_WEIGHT, TUNES, searched_by

from .common.bdrate import bd_rate
from .common.cli import (
    Parser,
    UsageError,
    floats,
    image_paths,
    output_file,
    require,
    run,
    warn,
    write_report,
)
from .common.images import image_name, load_rgb
from .common.memory import describe, peak_memory
from .common.metrics import bpp, ms_ssim, ms_ssim_db, psnr

PROG = "python -m benchmarks.effort"
#: ``--steer`` to ``codec.encoder.effort.SEARCH_BF16``.
STEERING = {"auto": None, "float32": False, "bfloat16": True}


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="RD gain and cost of encoder effort; rate-control accuracy.")
    p.add_argument("--data", help="folder of PNG/JPEG images (searched recursively)")
    p.add_argument("--json", required=True, help="where to write the results")
    p.add_argument("--efforts", default="1,2,3,4,5,6,7,8,9", help="effort levels 1-9 (all)")
    p.add_argument("--qualities", default="20,50,80", help="qualities of the RD curves")
    p.add_argument("--bpp-targets", default="0.25,0.5,1.0", help="bpp targets (default 0.25,0.5,1)")
    p.add_argument(
        "--size-targets",
        default=None,
        help="size targets in bytes (default: each image's bytes at the bpp targets)",
    )
    p.add_argument("--psnr-targets", default="26,30,34", help="PSNR targets in dB")
    p.add_argument("--no-targets", action="store_true", help="skip the rate-control part")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument(
        "--skip",
        type=int,
        default=0,
        help="leave out the first N images in name order (with --limit: one slice of a "
        "measurement too long for one run; --merge joins the slices)",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        metavar="RUN.json",
        default=None,
        help="instead of measuring, join the per-image results of earlier runs on different "
        "images (same levels, qualities, model and steering) into one report at --json",
    )
    p.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="RD.json[:CODEC]",
        help="also give each level's BD-rate against CODEC's curve in a benchmarks.rd report, "
        "on the same images (default CODEC: the AVIF the report kept); repeatable, and "
        "usable with --merge",
    )
    p.add_argument(
        "--crop", type=int, default=None, help="centre-crop images to at most NxN (default: whole)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--weights", default=None, help="lcodec weights name or .safetensors path")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="images and qualities measured in this many worker processes at once, each with "
        "--threads threads (default 1; times then include the workers' competition for cores)",
    )
    p.add_argument(
        "--steer",
        choices=sorted(STEERING),
        default="auto",
        help="arithmetic of the search's relaxed loss: bfloat16 autocast or float32; auto "
        "(default) is bfloat16 where the device computes it natively. Every candidate is "
        "judged in float32 by its real file either way",
    )
    p.add_argument(
        "--tune",
        choices=sorted(TUNES),
        default=None,
        help="search for this metric alone, as lcodec compress --tune does: with the release "
        "tuned for it unless --weights names one, and judged by its distortion (default: the "
        "release's own search distortion)",
    )
    p.add_argument(
        "--separate",
        action="store_true",
        help="encode every level on its own (default: one search per image and quality hands "
        "back every level's file, the same bytes, at the cost of the highest level)",
    )
    return p


def centre_crop(img: np.ndarray, side: int | None) -> np.ndarray:
    """The central ``side`` x ``side`` window (or less along a shorter side)."""
    if not side:
        return img
    h, w = img.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return np.ascontiguousarray(img[top : top + side, left : left + side])


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def searched(lm, kw: dict) -> str:
    """The distortion the search minimised: the tune's, else the release's own search's."""
    from codec.api import tuned

    return tuned(kw.get("tune"), kw.get("weights"))[1] or searched_by(lm.weights.distortion)


def _point(
    lm, img: np.ndarray, q: float, enc, seconds: float, cpu: float, peak: int, distortion: str
) -> dict:
    import torch

    from codec.metrics import file_rd_loss as rd_loss

    h, w = img.shape[:2]
    rate = torch.tensor([enc.container.rate], device=lm.device)
    lmbda = float(lm.model.lmbda(rate)[0])
    return {
        "quality": q,
        "bytes": len(enc.data),
        "bpp": bpp(len(enc.data), h, w),
        "psnr": psnr(img, enc.reconstruction),
        "ms_ssim_db": ms_ssim_db(ms_ssim(img, enc.reconstruction)),
        # what the search minimised and the guard judged: the tune's loss or the release's own
        "rd_loss": rd_loss(img, enc.reconstruction, len(enc.data), lmbda, distortion),
        "encode_s": seconds,
        "encode_s_per_mp": seconds / (h * w / 1e6),
        "encode_cpu_s_per_mp": cpu / (h * w / 1e6),
        "peak_bytes": peak,
    }


def _timed(lm, fn):
    """``fn()``, its wall-clock and CPU seconds, and the peak memory while it ran."""

    def call():
        _sync(lm.device)
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        _sync(lm.device)
        return out, time.perf_counter() - t0, time.process_time() - c0

    (out, seconds, cpu), peak, _ = peak_memory(call, lm.device)
    return out, seconds, cpu, peak


def rd_points(codec, lm, img: np.ndarray, effort: int, qualities: list[float], kw: dict) -> list:
    """One image's RD points at one effort, each level encoded on its own: bytes, bpp, PSNR,
    MS-SSIM, RD loss, encode seconds (and per megapixel), peak memory of the encode."""
    points, distortion = [], searched(lm, kw)
    for q in qualities:
        enc, seconds, cpu, peak = _timed(lm, lambda q=q: codec.encode(img, q, effort=effort, **kw))
        points.append(_point(lm, img, q, enc, seconds, cpu, peak, distortion))
    return points


def level_points(
    codec, lm, img: np.ndarray, efforts: list[int], qualities: list[float], kw: dict
) -> dict[int, list]:
    """One image's RD points at every effort, from one search per quality
    (``codec.encode_efforts``: each level's file is the one ``encode`` writes at that level).
    A level's time is the plain encode's plus the search's time when it settled that level;
    the peak memory is the whole search's, the same for every level above 1."""
    points: dict[int, list] = {e: [] for e in efforts}
    higher = [e for e in efforts if e > 1]
    distortion = searched(lm, kw)
    for q in qualities:
        plain, base_s, base_cpu, base_peak = _timed(lm, lambda q=q: codec.encode(img, q, **kw))
        levels, _, _, peak = (
            _timed(lm, lambda q=q: codec.encode_efforts(img, q, higher, **kw))
            if higher
            else ({}, 0, 0, 0)
        )
        levels[1] = plain
        for e in efforts:
            enc = levels[e]
            seconds = base_s + enc.search_seconds
            cpu = base_cpu + enc.search_cpu_seconds
            peak_e = base_peak if e == 1 else max(peak, base_peak)
            points[e].append(_point(lm, img, q, enc, seconds, cpu, peak_e, distortion))
    return points


def _configure(threads: int | None, steer: str = "auto") -> None:
    """Threads and search arithmetic, in this process or a worker (spawned workers start
    from the module defaults)."""
    import torch

    from codec.encoder import effort

    if threads:
        torch.set_num_threads(threads)
    effort.SEARCH_BF16 = STEERING[steer]


def _image_levels(img: np.ndarray, efforts: list[int], qualities: list[float], kw: dict):
    """``level_points`` in a worker process (which loads the model once)."""
    import codec

    lm = codec.load_model(device=kw.get("device"), weights=kw.get("weights"))
    return level_points(codec, lm, img, efforts, qualities, kw)


def _all_levels(images: dict, efforts: list[int], qualities: list[float], kw: dict, args):
    """``(name, level points)`` per image, in order; over ``--jobs`` worker processes (each
    with ``--threads`` threads, one image and quality at a time) when more than one."""
    if args.jobs <= 1:
        import codec
        from codec.encoder.effort import progress

        lm = codec.load_model(device=kw.get("device"), weights=kw.get("weights"))
        for name, img in images.items():
            with progress(tty_only=True):
                yield name, level_points(codec, lm, img, efforts, qualities, kw)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        args.jobs, mp_context=ctx, initializer=_configure, initargs=(args.threads, args.steer)
    ) as pool:
        # One task per image and quality, so that a few photos still keep every worker busy.
        futures = {
            n: [pool.submit(_image_levels, img, efforts, [q], kw) for q in qualities]
            for n, img in images.items()
        }
        for name, per_quality in futures.items():
            parts = [f.result() for f in per_quality]
            yield name, {e: [p for part in parts for p in part[e]] for e in efforts}


def mean_curve(per_image: list[list[dict]]) -> list[dict]:
    """Arithmetic means over images, point by point (same qualities everywhere)."""
    keys = ("bpp", "psnr", "ms_ssim_db", "rd_loss", "encode_s", "encode_s_per_mp")
    keys += ("encode_cpu_s_per_mp",)
    return [
        {"quality": pts[0]["quality"], **{k: statistics.fmean(p[k] for p in pts) for k in keys}}
        for pts in zip(*per_image)
    ]


def _bd(anchor: list[dict], test: list[dict], metric: str, unit: str = ""):
    return bd_rate(
        [p["bpp"] for p in anchor],
        [p[metric] for p in anchor],
        [p["bpp"] for p in test],
        [p[metric] for p in test],
        unit=unit,
    )


def effort_section(curves: dict[int, dict[str, list]], iterations: dict[int, int]) -> dict:
    """Per effort: mean curve, time per megapixel, peak memory, BD-rate against effort 1 (PSNR
    and MS-SSIM; mean curves and per image)."""
    anchor = curves.get(1)
    out = {}
    for effort, per_image in curves.items():
        curve = mean_curve(list(per_image.values()))
        points = [p for pts in per_image.values() for p in pts]
        entry = {
            "iterations": iterations[effort],
            "curve": curve,
            "mean_encode_s": statistics.fmean(p["encode_s"] for p in points),
            "encode_s_per_mp": statistics.fmean(p["encode_s_per_mp"] for p in points),
            "encode_cpu_s_per_mp": statistics.fmean(p["encode_cpu_s_per_mp"] for p in points),
            "peak_mib": max(p["peak_bytes"] for p in points) / 2**20,
        }
        if anchor is not None and effort != 1:
            ref = mean_curve(list(anchor.values()))
            for metric, key, unit in (("psnr", "psnr", " dB"), ("ms_ssim_db", "ms_ssim", " dB")):
                bd = _bd(ref, curve, metric, unit)
                per = [_bd(anchor[n], pts, metric).value for n, pts in per_image.items()]
                finite = [v for v in per if math.isfinite(v)]
                entry[f"bd_rate_{key}_percent"] = bd.value
                entry[f"bd_{key}_notes"] = bd.notes
                entry[f"bd_rate_{key}_percent_per_image_mean"] = (
                    statistics.fmean(finite) if finite else math.nan
                )
                entry["bd_images"] = len(finite)
            ref_loss = statistics.fmean(p["rd_loss"] for p in ref)
            entry["rd_loss_change_percent"] = 100 * (
                statistics.fmean(p["rd_loss"] for p in curve) / ref_loss - 1
            )
            # Every level must be at least as good as effort 1 on every image and quality.
            entry["points_worse_than_effort_1"] = sum(
                p["rd_loss"] > a["rd_loss"] + 1e-12
                for n, pts in per_image.items()
                for p, a in zip(pts, anchor[n])
            )
        out[str(effort)] = entry
    return out


#: A codec's curve in a benchmarks.rd report: (file, codec key, its entry in ``codecs``).
Against = tuple[str, str, dict]


def read_against(spec: str) -> Against:
    """``RD.json[:CODEC]``, read once while the arguments are checked, so that a report
    rewritten during an hour of measuring cannot change what the levels are compared with."""
    import json

    head, sep, tail = spec.rpartition(":")
    split = sep and head.lower().endswith(".json") and not Path(spec).is_file()
    path, key = (head, tail) if split else (spec, "")
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    codecs = report.get("codecs") if isinstance(report, dict) else None
    if not isinstance(codecs, dict):
        raise UsageError(f"{path} is not a benchmarks.rd report (rd.json)")
    avif = report.get("avif")
    kept = avif.get("kept") if isinstance(avif, dict) else None
    key = key or (kept if isinstance(kept, str) else "avif")
    if key not in codecs:
        raise UsageError(f"{path} has no {key!r} curve; it has {', '.join(sorted(codecs))}")
    if not isinstance(codecs[key], dict):
        raise UsageError(f"{path}: {key} is not a curve")
    return path, key, codecs[key]


def _finite(v: object) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def anchor_points(against: Against, images: dict[str, list]) -> dict[str, list[dict]]:
    """Per image of the effort run (``images``: name to [height, width]), the codec's points
    in the report's order. A report that lacks an image at some point, measured it twice or at
    another size (a --crop run), or holds no finite rate or PSNR for it is refused: a BD-rate
    over other pictures, or over a silently shorter curve, means nothing."""
    path, key, entry = against
    points = entry.get("points")
    if not isinstance(points, list) or len(points) < 2:
        raise UsageError(f"{path}: {key} has fewer than 2 RD points")
    out: dict[str, list[dict]] = {name: [] for name in images}
    for point in points:
        rows = point.get("images") if isinstance(point, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise UsageError(f"{path}: {key} has a point without per-image results")
        at = f"at quality {point.get('quality')}"
        for name, (h, w) in images.items():
            mine = [r for r in rows if r.get("image") == name]
            if len(mine) != 1:
                raise UsageError(f"{path}: {key} has no single result for {name} {at}")
            r = mine[0]
            size = (r.get("height"), r.get("width"))
            if not all(_finite(v) for v in size):
                raise UsageError(f"{path}: {key} does not say at which size it measured {name}")
            if size != (h, w):
                raise UsageError(f"{path}: {key} measured {name} at another size than {w}x{h}")
            ms = r.get("ms_ssim")
            if not (_finite(r.get("bpp")) and r["bpp"] > 0 and _finite(r.get("psnr"))) or not (
                ms is None or type(ms) in (int, float)
            ):
                raise UsageError(f"{path}: {key} has no finite bpp and PSNR for {name} {at}")
            out[name].append(
                {"bpp": float(r["bpp"]), "psnr": float(r["psnr"]), "ms_ssim_db": ms_ssim_db(ms)}
            )
    return out


def _mean_finite(values: Sequence[float]) -> float:
    """As benchmarks.rd averages MS-SSIM: over the images that have a value."""
    finite = [v for v in values if math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan


def against_section(report: dict, against: Against) -> dict:
    """Each level's BD-rate (PSNR and MS-SSIM on the mean curves, PSNR per image) against the
    codec's curve averaged over the images of ``report`` alone."""
    path, key, entry = against
    anchor = anchor_points(against, report["config"]["images"])
    ref = [
        {
            "bpp": statistics.fmean(p["bpp"] for p in pts),
            "psnr": statistics.fmean(p["psnr"] for p in pts),
            "ms_ssim_db": _mean_finite([p["ms_ssim_db"] for p in pts]),
        }
        for pts in zip(*anchor.values())
    ]
    levels = {}
    for effort, per_image in report["per_image"].items():
        curve = mean_curve(list(per_image.values()))
        psnr, ms = _bd(ref, curve, "psnr", " dB"), _bd(ref, curve, "ms_ssim_db", " dB")
        per = [_bd(anchor[n], pts, "psnr").value for n, pts in per_image.items()]
        finite = [v for v in per if math.isfinite(v)]
        levels[effort] = {
            "bd_rate_psnr_percent": psnr.value,
            "bd_rate_ms_ssim_percent": ms.value,
            "bd_rate_psnr_percent_per_image_mean": statistics.fmean(finite) if finite else None,
            "images_with_fewer_bits": sum(v < 0 for v in finite),
            "bd_images": len(finite),
            "notes": [f"PSNR: {n}" for n in psnr.notes] + [f"MS-SSIM: {n}" for n in ms.notes],
        }
    return {
        "report": Path(path).name,
        "codec": key,
        "label": entry.get("label", key),
        "settings": entry.get("settings"),
        "images": len(anchor),
        "qualities": [p.get("quality") for p in entry["points"]],
        "curve": ref,
        "levels": levels,
    }


def target_runs(codec, img: np.ndarray, targets: dict[str, list[float]], kw: dict) -> list:
    """Encode ``img`` at every target (effort 1) and record what was reached."""
    h, w = img.shape[:2]
    rows = []
    for kind, values in targets.items():
        for value in values:
            goal = int(value) if kind == "size" else value
            t0 = time.perf_counter()
            enc = codec.encode(img, **{f"target_{kind}": goal}, **kw)
            seconds = time.perf_counter() - t0
            t = enc.target
            if kind == "psnr":
                error = t.reached - t.target  # dB over the target
            else:
                error = t.reached / t.target - 1  # relative
            rows.append(
                {
                    "kind": kind,
                    "target": t.target,
                    "reached": t.reached,
                    "error": error,
                    "met": t.met,
                    "reachable": t.reachable,
                    "note": t.note,
                    "quality": t.quality,
                    "trials": t.trials,
                    "seconds": seconds,
                    "bytes": len(enc.data),
                    "bpp": bpp(len(enc.data), h, w),
                }
            )
    return rows


def target_summary(rows: list[dict]) -> dict:
    """Per target kind: error statistics, misses (and how many targets were out of the codec's
    range), trials and time. bpp and size errors are relative and count reachable targets."""
    out = {}
    for kind in ("bpp", "size", "psnr"):
        sel = [r for r in rows if r["kind"] == kind]
        if not sel:
            continue
        errs = [r["error"] for r in sel]
        reachable = [r for r in sel if r["reachable"]]
        entry = {
            "runs": len(sel),
            "misses": sum(not r["met"] for r in sel),
            "unreachable": len(sel) - len(reachable),
            "misses_when_reachable": sum(not r["met"] for r in reachable),
            "mean_trials": statistics.fmean(r["trials"] for r in sel),
            "mean_seconds": statistics.fmean(r["seconds"] for r in sel),
        }
        if kind == "psnr":
            met = [r["error"] for r in sel if r["met"]]
            entry["mean_excess_db_when_met"] = statistics.fmean(met) if met else math.nan
            entry["max_excess_db_when_met"] = max(met) if met else math.nan
            entry["mean_shortfall_db_when_missed"] = (
                statistics.fmean(-e for e in errs if e < 0) if any(e < 0 for e in errs) else 0.0
            )
        else:
            rel = [abs(r["error"]) for r in reachable]
            entry["mean_abs_rel_error"] = statistics.fmean(rel) if rel else math.nan
            entry["max_abs_rel_error"] = max(rel) if rel else math.nan
            entry["rel_error_over_all_runs_max"] = max(abs(e) for e in errs)
            if kind == "size":  # must be 0: only a target below the smallest file is exceeded
                entry["above_target_when_reachable"] = sum(
                    r["reached"] > r["target"] for r in reachable
                )
        out[kind] = entry
    return out


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    require("bjontegaard", "psutil")
    out = output_file(args.json)
    if args.merge:
        given = [d for d in MEASURING if getattr(args, d) != parser.get_default(d)]
        if given:
            flags = ", ".join("--" + d.replace("_", "-") for d in given)
            raise UsageError(f"--merge joins earlier runs; it takes no {flags}")
        against = [read_against(spec) for spec in args.against]
        report = merge_reports(args.merge)
        report["against"] = [against_section(report, a) for a in against]
        _write_and_print(report, out)
        return 0
    if not args.data:
        raise UsageError("--data is required (or --merge RUN.json ...)")
    root, paths = image_paths(args.data, args.limit, args.skip)
    if args.crop is not None and args.crop < 1:
        raise UsageError("--crop must be at least 1")
    if args.jobs < 1 or (args.jobs > 1 and args.separate):
        raise UsageError("--jobs must be at least 1, and 1 with --separate")
    efforts = sorted({int(v) for v in floats(args.efforts, "--efforts")})
    if not all(1 <= e <= 9 for e in efforts):
        raise UsageError("--efforts must be from 1 to 9")
    qualities = sorted(floats(args.qualities, "--qualities"))
    if not all(0 <= q <= 100 for q in qualities):
        raise UsageError("--qualities must be from 0 to 100")
    against = [read_against(spec) for spec in args.against]
    images = {image_name(p, root): centre_crop(load_rgb(p), args.crop) for p in paths}
    for a in against:  # before an hour of measuring, not after
        anchor_points(a, {n: list(img.shape[:2]) for n, img in images.items()})

    import torch

    import codec
    from codec.api import tuned
    from codec.encoder.effort import ITERATIONS, progress, steers_in_bf16

    _configure(args.threads, args.steer)
    device_arg = None if args.device == "auto" else args.device
    # The release --tune picks unless --weights names one, resolved once for every encode.
    weights, _ = tuned(args.tune, args.weights)
    kw = {"device": device_arg, **({"weights": weights} if weights else {})}
    kw.update({"tune": args.tune} if args.tune else {})
    try:
        lm = codec.load_model(device=device_arg, weights=weights)
    except codec.CodecError as e:
        raise UsageError(f"cannot load lcodec's model: {e}") from None

    codec.encode(next(iter(images.values())), 50, **kw)  # warm-up: model load, first calls

    curves: dict[int, dict[str, list]] = {e: {} for e in efforts}
    if args.separate:
        for effort in efforts:
            for name, img in images.items():
                with progress(tty_only=True):
                    curves[effort][name] = rd_points(codec, lm, img, effort, qualities, kw)
                pts = curves[effort][name]
                print(
                    f"effort {effort} {name}: {sum(p['encode_s'] for p in pts):.1f} s "
                    f"for {len(pts)} qualities",
                    file=sys.stderr,
                    flush=True,
                )
    else:
        for name, per_level in _all_levels(images, efforts, qualities, kw, args):
            for effort, pts in per_level.items():
                curves[effort][name] = pts
            top = per_level[efforts[-1]]
            print(
                f"{name}: effort {efforts[-1]} {sum(p['encode_s'] for p in top):.1f} s "
                f"for {len(top)} qualities (all levels from one search each)",
                file=sys.stderr,
                flush=True,
            )

    report = {
        "config": {
            "data": str(root),
            "skip": args.skip,
            "images": {n: list(a.shape[:2]) for n, a in images.items()},
            "crop": args.crop,
            "efforts": efforts,
            "qualities": qualities,
            "device": str(lm.device),
            "threads": torch.get_num_threads(),
            "steering": "bfloat16" if steers_in_bf16(lm.device) else "float32",
            "jobs": args.jobs,
            "torch": torch.__version__,
            "cpu": cpu_model(),
            "model": lm.weights.model_id,
            "bd_rate": "bjontegaard.bd_rate(method='akima') via benchmarks.common.bdrate; "
            "PSNR in dB; "
            "negative means fewer bits than effort 1 for the same PSNR",
            "rd_loss": "lambda(rate) * D + bpp of the real file (8-bit pixels), D the "
            "distortion searched by (config distortion): 255^2 * MSE, "
            f"{MS_SSIM_WEIGHT:g} * (1 - MS-SSIM), or a weighted mean of the two "
            "(codec.metrics.MSE_SHARES; MSE alone where a side is "
            f"{MS_SSIM_MIN_SIDE} px or less); the tune's distortion with --tune, else the "
            "release's search distortion (codec.metrics.searched_by)",
            "distortion": searched(lm, kw),
            "tune": args.tune,
            "memory": describe(lm.device),
            "targets": None
            if args.no_targets
            else {
                "bpp": args.bpp_targets,
                "psnr": args.psnr_targets,
                "size": args.size_targets or "each image's bytes at the bpp targets",
            },
            "iterations": {str(e): ITERATIONS[e] for e in efforts},
            "levels": "each level encoded on its own"
            if args.separate
            else "one search per image and quality to the highest level; each lower level's "
            "file is the one encode writes at that level (tests/test_effort.py); its time is "
            "the plain encode's plus the search's time at that level's budget; peak memory "
            "is the whole search's",
        },
        "effort": effort_section(curves, ITERATIONS),
        "per_image": {str(e): c for e, c in curves.items()},
    }

    if not args.no_targets:
        targets = {
            "bpp": floats(args.bpp_targets, "--bpp-targets"),
            "psnr": floats(args.psnr_targets, "--psnr-targets"),
        }
        rows = []
        for name, img in images.items():
            px = img.shape[0] * img.shape[1]
            sizes = (
                floats(args.size_targets, "--size-targets")
                if args.size_targets
                else [max(1, round(b * px / 8)) for b in targets["bpp"]]
            )
            for row in target_runs(codec, img, {**targets, "size": sizes}, kw):
                rows.append({"image": name, **row})
        report["targets"] = {"summary": target_summary(rows), "runs": rows}

    report["against"] = [against_section(report, a) for a in against]
    _write_and_print(report, out)
    return 0


#: What runs must share to be merged into one report.
SHARED = (
    "efforts",
    "qualities",
    "crop",
    "model",
    "distortion",
    "tune",
    "steering",
    "iterations",
    "device",
    "memory",
    "levels",
    "targets",
)
#: Where runs ran: kept per run, and a merge warns when they differ (times and peaks are pooled).
WHERE = ("cpu", "threads", "jobs", "torch")
#: The flags that say what to measure, which a merge cannot honour.
MEASURING = (
    "data",
    "skip",
    "limit",
    "efforts",
    "qualities",
    "bpp_targets",
    "size_targets",
    "psnr_targets",
    "no_targets",
    "crop",
    "device",
    "threads",
    "weights",
    "tune",
    "jobs",
    "steer",
    "separate",
)
#: What every RD point of a report holds, as a number.
POINT = (
    "quality",
    "bpp",
    "psnr",
    "ms_ssim_db",
    "rd_loss",
    "encode_s",
    "encode_s_per_mp",
    "encode_cpu_s_per_mp",
    "peak_bytes",
)


def _check_report(name: str, run_: object) -> None:
    """Refuse a file that is not one whole effort report before any figure is pooled from it:
    a level or image missing from one run would move the joint curves without a word."""
    not_report = UsageError(f"{name} is not a benchmarks.effort report")
    if not isinstance(run_, dict) or not isinstance(run_.get("per_image"), dict):
        raise not_report
    config = run_.get("config")
    try:
        levels = {str(int(e)) for e in config["efforts"]}
        qualities = [float(q) for q in config["qualities"]]
        images = set(config["images"])
        iterations = set(config["iterations"])
    except (KeyError, TypeError, ValueError):
        raise not_report from None
    runs = config.get("runs")
    if runs is not None and not (isinstance(runs, list) and all(isinstance(r, dict) for r in runs)):
        raise not_report
    if set(run_["per_image"]) != levels or iterations != levels:
        raise UsageError(f"{name} does not hold every effort level it lists")
    for level, per_image in run_["per_image"].items():
        if not isinstance(per_image, dict) or set(per_image) != images:
            raise UsageError(f"{name}: effort {level} does not hold every image the run lists")
        for image, pts in per_image.items():
            numbers = isinstance(pts, list) and all(
                isinstance(p, dict) and all(_finite(p.get(k)) for k in POINT) for p in pts
            )
            if not numbers or [p["quality"] for p in pts] != qualities:
                raise UsageError(
                    f"{name}: effort {level}, {image}: not one complete RD point per quality"
                )


def merge_reports(files: Sequence[str]) -> dict:
    """One report from runs on different images: the per-image results side by side and the
    summary recomputed over all of them (BD-rate on the mean curves is not a mean of the runs'
    BD-rates). Runs must agree on what they measured; where they ran (CPU, jobs, threads) is
    kept per run, since that is what their times mean."""
    import json

    runs = []
    for f in files:
        try:
            runs.append(json.loads(Path(f).read_text()))
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot read {f}: {e}") from None
        _check_report(f, runs[-1])
    first = runs[0]["config"]
    for f, run_ in zip(files, runs):
        for key in SHARED:
            if run_["config"].get(key) != first.get(key):
                raise UsageError(
                    f"{Path(f).name} and {Path(files[0]).name} differ in {key}: "
                    f"{run_['config'].get(key)!r} against {first.get(key)!r}"
                )
    # Where each slice ran; a report that is itself a merge brings its own slices' records.
    sources = [
        source
        for f, r in zip(files, runs)
        for source in r["config"].get("runs")
        or [
            {
                "file": Path(f).name,
                "images": sorted(r["config"]["images"]),
                **{k: r["config"].get(k) for k in ("data", "skip", *WHERE)},
            }
        ]
    ]
    for key in WHERE:
        if len({json.dumps(s.get(key)) for s in sources}) > 1:
            warn(PROG, f"the runs differ in {key}: their times and peaks are pooled all the same")
    with_targets = [f for f, r in zip(files, runs) if "targets" in r]
    if with_targets and len(with_targets) < len(runs):
        without = next(f for f, r in zip(files, runs) if "targets" not in r)
        raise UsageError(
            f"{with_targets[0]} has rate-control results and {without} has none: "
            "run every slice with --no-targets or none"
        )
    curves: dict[int, dict[str, list]] = {int(e): {} for e in first["efforts"]}
    owner: dict[str, int] = {}
    for i, run_ in enumerate(runs):
        for effort, per_image in run_["per_image"].items():
            for name, pts in per_image.items():
                if owner.setdefault(name, i) != i:
                    raise UsageError(f"{name} is in two runs: {files[owner[name]]} and {files[i]}")
                curves[int(effort)][name] = pts
    config = {k: first.get(k) for k in SHARED}
    config["images"] = {n: s for r in runs for n, s in r["config"]["images"].items()}
    config["runs"] = sources
    for key in ("bd_rate", "rd_loss"):
        config[key] = first.get(key)
    iterations = {int(e): n for e, n in first["iterations"].items()}
    report = {
        "config": config,
        "effort": effort_section(curves, iterations),
        "per_image": {str(e): c for e, c in curves.items()},
    }
    if with_targets:
        try:
            rows = [row for r in runs for row in r["targets"]["runs"]]
            report["targets"] = {"summary": target_summary(rows), "runs": rows}
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"incomplete rate-control results in a run: {e!r}") from None
    return report


def _percent(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:+.2f} %"


def _write_and_print(report: dict, out: Path) -> None:
    write_report(report, out)
    print(
        "| effort | steps | BD-rate PSNR | BD-rate MS-SSIM | RD loss | s/MP | CPU s/MP "
        "| peak RSS MiB | worse than 1 |\n|---|---|---|---|---|---|---|---|---|"
    )
    for effort, entry in report["effort"].items():
        bd = entry.get("bd_rate_psnr_percent")
        cells = [
            effort,
            str(entry["iterations"]),
            "—" if bd is None else f"{bd:+.2f} %",
            "—" if bd is None else f"{entry['bd_rate_ms_ssim_percent']:+.2f} %",
            "—" if bd is None else f"{entry['rd_loss_change_percent']:+.2f} %",
            f"{entry['encode_s_per_mp']:.1f}",
            f"{entry['encode_cpu_s_per_mp']:.1f}",
            f"{entry['peak_mib']:.0f}",
            str(entry.get("points_worse_than_effort_1", "—")),
        ]
        print("| " + " | ".join(cells) + " |")
    for section in report.get("against", []):
        print(
            f"\nagainst {section['label']} ({section['report']}, {section['images']} images)\n"
            "| effort | BD-rate PSNR | BD-rate MS-SSIM | per-image mean (PSNR) "
            "| images with fewer bits |\n|---|---|---|---|---|"
        )
        notes = []
        for effort, row in section["levels"].items():
            cells = [
                effort,
                _percent(row["bd_rate_psnr_percent"]),
                _percent(row["bd_rate_ms_ssim_percent"]),
                _percent(row["bd_rate_psnr_percent_per_image_mean"]),
                f"{row['images_with_fewer_bits']} of {row['bd_images']}",
            ]
            print("| " + " | ".join(cells) + " |")
            notes += [f"effort {effort}: {n}" for n in row["notes"]]
        for note in notes:
            print(f"note: {note}")
    for kind, s in report.get("targets", {}).get("summary", {}).items():
        print(f"target {kind}: {s['runs']} runs, {s['misses']} missed")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a one-line message on bad arguments)."""
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
