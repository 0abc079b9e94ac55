"""Rate-distortion benchmark: every codec live on a folder of images, as real files.

For each image, codec and quality the image is encoded to the bytes of a file, decoded again,
and measured: bpp from the file size, PSNR-RGB and MS-SSIM on the 8-bit result, and the
encode and decode wall times. Means over the images form one RD point (arithmetic means of the
per-image values, as CompressAI reports them). Outputs in ``--out``: rd.json, rd.csv,
bd_rate.md, bd_rate.json, rd_psnr.png, rd_msssim.png and rd_by_psnr.png (lcodec's extra bits
against each codec at each PSNR). ``--from RD.json`` writes the tables and plots again from an
earlier run without measuring.

AVIF has two settings, ``avif`` (speed 6, 4:2:0) and ``avif-s2-444`` (speed 2, 4:4:4). When
both ran, the BD-rate tables and plots carry only the stronger, keyed ``avif`` (the rule is in
``benchmarks/common/avif.py``); rd.json records both settings, the choice and the BD-rates
between them under ``avif``.

    python -m benchmarks.rd --data DIR --out OUT [--codecs lcodec,jpeg,...] [--points N]
    python -m benchmarks.rd --from OUT/rd.json --out OUT2 [--anchor-codec webp]
    python -m benchmarks.rd --from OUT/rd.json --from ONE_CODEC/rd.json --out OUT3
"""

from __future__ import annotations

import csv
import json
import math
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from codec.metrics import TUNES

from .common import anchors as anchors_mod
from .common import avif as avif_mod
from .common import codecs as codecs_mod
from .common.bdrate import bd_by_level, bd_per_image, bd_table, bd_versus, table_markdown
from .common.cli import Parser, UsageError, floats, image_paths, require, run, warn
from .common.curves import SUBJECT, Curve, live_curve, sibling
from .common.images import image_name, load_rgb
from .common.jsonutil import finite_or_none, write_json
from .common.metrics import MS_SSIM_MIN_SIDE, bpp, ms_ssim, ms_ssim_db, psnr

PROG = "python -m benchmarks.rd"
CSV_FIELDS = (
    "codec",
    "quality",
    "image",
    "width",
    "height",
    "bytes",
    "bpp",
    "psnr",
    "ms_ssim",
    "enc_s",
    "dec_s",
)


def build_parser() -> Parser:
    p = Parser(
        prog=PROG,
        description="Rate-distortion benchmark of lcodec and classical codecs.",
        epilog="Which AVIF: avif is speed 6 with 4:2:0, avif-s2-444 speed 2 with 4:4:4. "
        + avif_mod.RULE
        + " rd.json records both settings, the one kept and the BD-rates between them under "
        "'avif'; --anchor-codec avif or avif-s2-444 then names the kept one.",
    )
    p.add_argument("--data", help="folder of PNG/JPEG images (searched recursively)")
    p.add_argument(
        "--from",
        dest="from_report",
        action="append",
        default=[],
        metavar="RD.json",
        help="measure nothing: write the BD tables and plots again from an earlier run's "
        "rd.json (another --anchor-codec, --bd-method or --anchors). Repeated, the codecs of "
        "several runs on the same images in one report, with its merged rd.json and rd.csv; "
        "a codec that more than one run measured comes from the last, or, with the same "
        "settings, joins the qualities of each (a sweep split across runs)",
    )
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument(
        "--codecs",
        default=None,
        help="comma-separated codecs (default: all of "
        + ",".join(codecs_mod.default_names())
        + "; also "
        + ",".join(n for n, cls in codecs_mod.REGISTRY.items() if cls.opt_in)
        + ", only when named)",
    )
    p.add_argument(
        "--qualities",
        action="append",
        default=[],
        metavar="[CODEC=]Q,Q,...",
        help="qualities 0-100 for all codecs, or for one with CODEC=...; repeatable",
    )
    p.add_argument(
        "--points",
        type=int,
        default=None,
        help="use N evenly spaced points of each codec's default sweep",
    )
    p.add_argument(
        "--anchors",
        default=None,
        metavar="FILE.json",
        help="published curves to overlay, e.g. benchmarks/anchors/compressai_kodak.json",
    )
    p.add_argument(
        "--anchor-methods",
        default=None,
        metavar="KEY,KEY|all",
        help="methods of the anchors file to overlay (default: "
        + ", ".join(anchors_mod.DEFAULT_METHODS)
        + ")",
    )
    p.add_argument(
        "--anchor-codec",
        default=None,
        help="the BD-rate anchor: a codec name, or a method key of --anchors "
        "(default: jpeg, or the first codec when jpeg is not run)",
    )
    p.add_argument(
        "--bd-method",
        default="akima",
        choices=("akima", "pchip"),
        help="BD interpolation (default: akima)",
    )
    p.add_argument("--device", default=None, help="lcodec device: auto, cpu or cuda")
    p.add_argument(
        "--weights",
        default=None,
        help="weights name or .safetensors path of the codecs lcodec and lcodec-effort "
        "(lcodec-ms-ssim is the release --tune ms-ssim writes with)",
    )
    p.add_argument(
        "--effort",
        type=int,
        default=None,
        help="encoder effort 1-9 of the codec lcodec-effort (default "
        f"{codecs_mod.LCodecEffort.default_effort}); slow, see docs/EFFORT.md",
    )
    p.add_argument(
        "--tune",
        default=None,
        choices=tuple(TUNES),
        help="as lcodec compress --tune, for the codec lcodec-effort: the release tuned for the "
        "metric unless --weights names one, and the metric its search optimises (default: "
        "what the release was trained on)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads for lcodec")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def parse_codecs(text: str) -> list[str]:
    """Codec names from a comma list, checked against the registry (order kept, no repeats)."""
    names = list(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in codecs_mod.REGISTRY]
    if unknown:
        known = ", ".join(codecs_mod.available_names())
        raise UsageError(f"unknown codec {', '.join(unknown)} (known: {known})")
    if not names:
        raise UsageError("--codecs names no codec")
    return names


def _qualities(text: str, what: str) -> list[float]:
    values = floats(text, what)
    if not all(0 <= v <= 100 for v in values):
        raise UsageError(f"{what}: qualities must be numbers from 0 to 100, got {text!r}")
    return values


def evenly_spaced(values: Sequence[float], n: int) -> list[float]:
    """``n`` values spread over ``values`` from first to last (all of them if n >= len)."""
    if n >= len(values):
        return list(values)
    if n == 1:
        return [values[len(values) // 2]]
    idx = sorted({round(i * (len(values) - 1) / (n - 1)) for i in range(n)})
    return [values[i] for i in idx]


def quality_plan(names: list[str], specs: list[str], points: int | None) -> dict[str, list[float]]:
    """The sorted quality sweep of each codec from defaults, ``--points`` and ``--qualities``."""
    if points is not None and points < 1:
        raise UsageError("--points must be at least 1")
    plan = {}
    for n in names:
        default = list(codecs_mod.REGISTRY[n].default_qualities)
        plan[n] = evenly_spaced(default, points) if points else default
    for spec in specs:
        name, sep, values = spec.partition("=")
        if sep:
            name = name.strip().lower()
            if name not in codecs_mod.REGISTRY:
                raise UsageError(f"--qualities: unknown codec {name!r}")
            if name in plan:
                plan[name] = _qualities(values, f"--qualities {name}")
        else:
            for n in names:
                plan[n] = _qualities(spec, "--qualities")
    return {n: sorted(set(q)) for n, q in plan.items()}


def anchor_and_published(args, names: list[str], what: str) -> list[Curve]:
    """Default ``--anchor-codec`` (JPEG, else the first codec), then the published curves,
    which carry the anchor when it names one of their methods; ``what`` names ``names`` in
    the error when the anchor is neither."""
    if args.anchor_codec is None:
        args.anchor_codec = "jpeg" if "jpeg" in names else names[0]
    published = load_published(args)
    if args.anchor_codec not in names and args.anchor_codec not in {c.key for c in published}:
        raise UsageError(
            f"--anchor-codec {args.anchor_codec!r} is neither {what} nor a method of --anchors"
        )
    return published


def load_published(args) -> list[Curve]:
    """The published curves to overlay, or none without ``--anchors``."""
    if not args.anchors:
        if args.anchor_methods:
            raise UsageError("--anchor-methods needs --anchors FILE.json")
        return []
    path = Path(args.anchors)
    if not path.is_file():
        raise UsageError(f"anchors file not found: {args.anchors}")
    try:
        methods = anchors_mod.load_methods(path)
    except (ValueError, TypeError, OSError) as e:
        raise UsageError(f"cannot read anchors file {path.name}: {e}") from None
    keys = None
    if args.anchor_methods == "all":
        keys = list(methods)
    elif args.anchor_methods:
        keys = [k.strip() for k in args.anchor_methods.split(",") if k.strip()]
    if args.anchor_codec in methods and args.anchor_codec not in (
        keys or anchors_mod.DEFAULT_METHODS
    ):
        keys = [*(keys or anchors_mod.DEFAULT_METHODS), args.anchor_codec]
    try:
        return anchors_mod.select(methods, keys)
    except KeyError as e:
        raise UsageError(f"anchor method not in {path.name}: {e.args[0]}") from None


def measure(c: codecs_mod.Codec, img: np.ndarray, quality: float) -> dict:
    """Encode and decode one image at one quality; sizes, metrics and wall times."""
    t0 = time.perf_counter()
    data = c.encode(img, quality)
    t1 = time.perf_counter()
    rec = c.decode(data)
    t2 = time.perf_counter()
    if rec.shape != img.shape or rec.dtype != np.uint8:
        raise ValueError(f"decoded {rec.shape} {rec.dtype}, expected {img.shape} uint8")
    h, w = img.shape[:2]
    return {
        "width": w,
        "height": h,
        "bytes": len(data),
        "bpp": bpp(len(data), h, w),
        "psnr": psnr(img, rec),
        "ms_ssim": ms_ssim(img, rec),
        "enc_s": t1 - t0,
        "dec_s": t2 - t1,
    }


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def summarize(quality: float, per_image: list[dict]) -> dict:
    """One RD point: means over images (MS-SSIM over the images large enough for it)."""
    point = {"quality": quality}
    for key in ("bpp", "psnr", "ms_ssim", "enc_s", "dec_s"):
        point[key] = _mean([r[key] for r in per_image])
    point["ms_ssim_db"] = ms_ssim_db(point["ms_ssim"])
    point["ms_ssim_images"] = sum(not math.isnan(r["ms_ssim"]) for r in per_image)
    point["images"] = per_image
    return point


def _environment() -> dict:
    import PIL

    from codec.hardware import cpu_model

    env = {
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    if "torch" in sys.modules:
        env["torch"] = sys.modules["torch"].__version__
        env["torch_threads"] = sys.modules["torch"].get_num_threads()
    return env


def csv_rows(results: dict) -> list[dict]:
    """One row per codec, quality and image; a non-finite value (null in rd.json) becomes an
    empty field, whether the results were measured or read back."""
    return [
        finite_or_none(
            {"codec": name, "quality": point["quality"], **{k: r[k] for k in CSV_FIELDS[2:]}}
        )
        for name, entry in results.items()
        for point in entry["points"]
        for r in point["images"]
    ]


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        w.writerows(rows)


def run_sweeps(coders: dict, plan: dict, root: Path, paths: list[Path], progress: bool):
    """Measure every (image, codec, quality); returns per-point image lists and failures.

    Each codec first encodes and decodes once untimed, so model loading and lazy library set-up
    do not count. A codec that fails on its very first attempt is dropped (a missing library,
    weights or device); a later failure drops only that point, since its mean would cover fewer
    images.
    """
    from tqdm import tqdm

    per_point = {n: {q: [] for q in plan[n]} for n in coders}
    failed: dict[tuple[str, float], str] = {}
    dropped: dict[str, str] = {}
    warm: set[str] = set()
    total = len(paths) * sum(len(plan[n]) for n in coders)
    with tqdm(total=total, desc="rd", unit="pt", disable=not progress, file=sys.stderr) as bar:
        for path in paths:
            name = image_name(path, root)
            img = load_rgb(path)
            for cname, c in coders.items():
                for q in plan[cname]:
                    bar.set_postfix_str(f"{cname} q={q:g} {name}", refresh=False)
                    bar.update(1)
                    if cname in dropped or (cname, q) in failed:
                        continue
                    try:
                        if cname not in warm:  # model loading and lazy setup stay untimed
                            c.decode(c.encode(img, q))
                            warm.add(cname)
                        r = measure(c, img, q)
                    except Exception as e:  # noqa: BLE001 - any codec failure is reported
                        msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                        if not any(per_point[cname][qq] for qq in plan[cname]):
                            dropped[cname] = msg
                            warn(PROG, f"{cname} skipped: {msg}")
                        else:
                            failed[(cname, q)] = f"{name}: {msg}"
                            warn(PROG, f"{cname} quality {q:g} dropped ({name}): {msg}")
                        continue
                    per_point[cname][q].append({"image": name, **r})
    return per_point, failed, dropped


#: What only measuring uses; --from refuses them rather than ignore them.
MEASURING = (
    "data",
    "codecs",
    "qualities",
    "points",
    "device",
    "weights",
    "effort",
    "tune",
    "threads",
    "limit",
)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    require("bjontegaard", "matplotlib")
    if args.from_report:
        return _report_again(args)
    if not args.data:
        raise UsageError("--data is required (or --from RD.json to report an earlier run)")
    names = parse_codecs(args.codecs or ",".join(codecs_mod.default_names()))
    weighted = codecs_mod.taking("weights")
    if args.weights and not set(weighted) & set(names):
        raise UsageError(
            f"--weights chooses the weights of the codecs {' and '.join(weighted)}, "
            "which --codecs leaves out"
        )
    if args.effort is not None:
        efforted = codecs_mod.taking("effort")
        if not set(efforted) & set(names):
            raise UsageError(
                f"--effort is the effort of the codec {' and '.join(efforted)}: name it in --codecs"
            )
        from codec.encoder.effort import effort_iterations
        from codec.errors import CodecError

        try:
            effort_iterations(args.effort)
        except CodecError:
            raise UsageError(f"--effort must be 1 to 9, got {args.effort}") from None
    tuning = codecs_mod.taking("tune")
    if args.tune is not None and not set(tuning) & set(names):
        raise UsageError(
            f"--tune applies only to the codec {' and '.join(tuning)}: name it in --codecs"
        )
    plan = quality_plan(names, args.qualities, args.points)
    root, paths = image_paths(args.data, args.limit)
    images = [{"image": image_name(p, root), **_size(p)} for p in paths]
    published = anchor_and_published(args, names, "a selected codec")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if any(n == SUBJECT or sibling(n) for n in names) and (args.device or "").startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda, but torch sees no CUDA device")

    coders: dict[str, codecs_mod.Codec] = {}
    skipped: dict[str, str] = {}
    for n in names:
        c = codecs_mod.create(n, args.device, args.weights, args.effort, args.tune)
        try:
            c.check()
        except codecs_mod.CodecUnavailable as e:
            skipped[n] = str(e)
            warn(PROG, f"{n} skipped: {e}")
            continue
        coders[n] = c

    per_point, failed, dropped = run_sweeps(coders, plan, root, paths, not args.no_progress)
    skipped.update(dropped)

    results = {}
    for n, c in coders.items():
        if n in dropped:
            continue
        points = [summarize(q, imgs) for q, imgs in per_point[n].items() if (n, q) not in failed]
        if points:
            results[n] = {
                "label": c.label,
                "settings": c.settings(),
                "qualities": plan[n],
                "points": points,
            }
        else:
            skipped[n] = "every point failed"

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "data": str(args.data),
        "images": images,
        "metrics": {
            "bpp": "8 * file bytes / (H * W); the whole file counts, headers included",
            "psnr": "PSNR in dB over all RGB values of the 8-bit decoded image",
            "ms_ssim": "pytorch_msssim.ms_ssim(data_range=255)'s score on 8-bit RGB, computed "
            "in bands by codec.metrics.ms_ssim; null for images "
            f"whose smaller side is <= {MS_SSIM_MIN_SIDE} px (five scales need more); "
            "a point's mean covers the ms_ssim_images images that have a value",
            "enc_s, dec_s": "wall seconds per image: encode to bytes, decode from bytes",
            "means": "arithmetic means of per-image values",
        },
        "environment": _environment(),
        "codecs": results,
        "skipped": skipped,
        "failed_points": [{"codec": n, "quality": q, "error": m} for (n, q), m in failed.items()],
    }
    choice = avif_mod.choose(results, args.bd_method)
    write_measurements(report, csv_rows(results), choice, published, args.anchors, out)
    title = _title(Path(args.data).resolve().name, len(paths))
    written = write_reports(
        results, choice, published, args.anchor_codec, args.bd_method, out, title
    )
    print(f"wrote {out / 'rd.json'}, rd.csv, {', '.join(written)}")
    return 0


def write_measurements(
    report: dict,
    rows: list[dict],
    choice: dict | None,
    published: list[Curve],
    anchors: str | None,
    out: Path,
) -> None:
    """rd.json, with the AVIF the tables keep and the published curves they draw, and rd.csv."""
    if choice:
        report["avif"] = choice
    if published:
        report["published"] = {"file": Path(anchors).name, "methods": [c.key for c in published]}
    write_json(report, out / "rd.json")
    write_csv(rows, out / "rd.csv")


def _title(data_name: str, count: int) -> str:
    return f"{data_name} ({count} image" + ("s" if count != 1 else "") + ")"


def write_reports(
    results: dict,
    choice: dict | None,
    published: list[Curve],
    anchor: str,
    method: str,
    out: Path,
    title: str,
) -> list[str]:
    """The BD tables and the plots of measured ``results``; the names of the files written."""
    from .common.plots import plot_by_level, plot_rd

    compared = avif_mod.compared(results, choice)
    if choice and anchor in avif_mod.VARIANTS:
        anchor = avif_mod.ROLE
    curves = [live_curve(n, e) for n, e in compared.items()] + published
    by_level = write_bd(curves, anchor, method, out, compared, choice)
    plot_rd(curves, "psnr", out / "rd_psnr.png", title)
    plot_rd(curves, "ms_ssim_db", out / "rd_msssim.png", title)
    written = ["bd_rate.md", "bd_rate.json", "rd_psnr.png", "rd_msssim.png"]
    if by_level is not None:
        plot_by_level(by_level, out / "rd_by_psnr.png", title)
        written.append("rd_by_psnr.png")
    return written


def _read_report(name: str) -> dict:
    path = Path(name)
    if not path.is_file():
        raise UsageError(f"report not found: {name}")
    try:
        report = json.loads(path.read_text())
        if not (
            isinstance(report["codecs"], dict)
            and isinstance(report["images"], list)
            and isinstance(report["data"], str)
        ):
            raise TypeError
    except (ValueError, KeyError, TypeError, OSError):
        raise UsageError(f"not an rd.json of python -m benchmarks.rd: {name}") from None
    return report


def merge_reports(reports: list[tuple[str, dict]]) -> dict:
    """One report of the codecs of runs on the same images, in a full run's order. A codec that
    more than one run measured with the same label and settings keeps the points of each, the
    last run's at a quality both measured, so a long sweep can be split across runs; with other
    settings the last run's curve replaces the earlier ones. ``merged_from`` keeps which run
    measured which codec, and where it ran (through a merged input to the runs it was merged
    from)."""

    def sizes(report: dict) -> list[tuple]:
        return [(i["image"], i["width"], i["height"]) for i in report["images"]]

    def same_codec(a: dict, b: dict) -> bool:
        return (a.get("label"), a.get("settings")) == (b.get("label"), b.get("settings"))

    first_name, first = reports[0]
    images = sizes(first)
    curves: dict[str, dict] = {}
    owner: dict[str, dict[float, int]] = {}  # codec -> quality -> the run its point comes from
    for k, (name, report) in enumerate(reports):
        if sizes(report) != images:
            raise UsageError(
                f"{name} measured other images than {first_name}: their codecs cannot share a table"
            )
        for codec in report.get("skipped", {}):
            if codec in curves:  # an older curve would stand in for the one that failed
                older = reports[max(owner[codec].values())][0]
                raise UsageError(
                    f"{name} has no {codec} curve ({report['skipped'][codec]}), "
                    f"{older} has an older one: leave {codec} out of one run"
                )
        for codec, entry in report["codecs"].items():
            if codec not in curves or not same_codec(curves[codec], entry):
                curves[codec], owner[codec] = {**entry, "points": []}, {}
            points = {p["quality"]: p for p in curves[codec]["points"]}
            points.update((p["quality"], p) for p in entry["points"])
            owner[codec].update((p["quality"], k) for p in entry["points"])
            curves[codec]["points"] = [points[q] for q in sorted(points)]
            curves[codec]["qualities"] = sorted(
                set(curves[codec].get("qualities", [])) | set(points)
            )
    order = {n: i for i, n in enumerate(codecs_mod.available_names())}  # a full run's order
    names = sorted(curves, key=lambda n: order.get(n, len(order)))
    sources = {n: set(owner[n].values()) for n in names}
    merged = {key: first[key] for key in ("data", "images", "metrics") if key in first}
    merged["merged_from"] = []
    for k, (name, report) in enumerate(reports):
        taken = [n for n in names if k in sources[n]]
        runs = report.get("merged_from") or [
            {"file": name, "data": report["data"], "environment": report.get("environment")}
        ]
        for entry in runs:
            codecs = [n for n in entry.get("codecs", taken) if n in taken]
            if codecs:
                merged["merged_from"].append({**entry, "codecs": codecs})
    merged["codecs"] = {n: curves[n] for n in names}
    merged["skipped"] = {
        n: why for _, r in reports for n, why in r.get("skipped", {}).items() if n not in curves
    }
    merged["failed_points"] = [
        f
        for k, (_, report) in enumerate(reports)
        for f in report.get("failed_points", [])
        if k in sources.get(f.get("codec"), ()) and owner[f["codec"]].get(f.get("quality"), k) == k
    ]
    return merged


def _report_again(args) -> int:
    """``--from``: the reports of earlier runs' rd.json, measuring nothing; several are merged
    first (and the merged rd.json and rd.csv written too)."""
    given = [f"--{k}" for k in MEASURING if getattr(args, k) not in (None, [])]
    if given:
        raise UsageError(
            f"--from reports a finished run; leave out {', '.join(given)} (measuring only)"
        )
    reports = [(name, _read_report(name)) for name in args.from_report]
    merging = len(reports) > 1
    try:
        report = merge_reports(reports) if merging else reports[0][1]
        rows = csv_rows(report["codecs"]) if merging else []
    except (KeyError, TypeError, AttributeError):
        raise UsageError(
            f"not an rd.json of python -m benchmarks.rd: {', '.join(args.from_report)}"
        ) from None
    results = report["codecs"]
    if not results:
        raise UsageError(f"{', '.join(args.from_report)}: no measured codec")
    what = "a codec of " + ", ".join(args.from_report)
    published = anchor_and_published(args, list(results), what)
    choice = avif_mod.choose(results, args.bd_method)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if merging:
        write_measurements(report, rows, choice, published, args.anchors, out)
        written = ["rd.json", "rd.csv"]
    title = _title(Path(report["data"]).name, len(report["images"]))
    written += write_reports(
        results, choice, published, args.anchor_codec, args.bd_method, out, title
    )
    print(f"wrote {', '.join(str(out / w) for w in written)}")
    return 0


def _size(path: Path) -> dict:
    """Width and height as decoded (EXIF orientation applied); unreadable files are errors."""
    try:
        h, w = load_rgb(path).shape[:2]
    except (OSError, ValueError, SyntaxError) as e:
        raise UsageError(f"cannot read image {path}: {e}") from None
    return {"width": w, "height": h}


def image_curves(results: dict) -> dict[str, list[Curve]]:
    """Each image's own curve per codec, from the per-image values of every point."""
    by_image: dict[str, list[Curve]] = {}
    for key, entry in results.items():
        rows: dict[str, list[dict]] = {}
        for point in entry["points"]:
            for r in point["images"]:
                rows.setdefault(r["image"], []).append(
                    {**r, "ms_ssim_db": ms_ssim_db(r["ms_ssim"])}
                )
        for image, points in rows.items():
            curve = live_curve(key, {"label": entry["label"], "points": points})
            by_image.setdefault(image, []).append(curve)
    return by_image


def write_bd(
    curves: list[Curve],
    anchor: str,
    method: str,
    out: Path,
    results: dict | None = None,
    avif_choice: dict | None = None,
) -> dict | None:
    """bd_rate.json and bd_rate.md; an explanatory stub when the anchor produced no curve.

    When lcodec ran, both files also carry lcodec against each live codec ("versus"), the
    same at each PSNR ("by_psnr", which is returned for its plot) and, given the per-image
    ``results``, per image ("per_image"). ``avif_choice`` (from ``avif.choose``) is recorded
    in both as "avif": which AVIF setting the tables use and why.
    """
    if any(c.key == anchor for c in curves):
        table = bd_table(curves, anchor, method)
        versus = per_image = by_level = None
        if any(c.key == SUBJECT and not c.published for c in curves):
            versus = bd_versus(curves, SUBJECT, method)
            table["versus"] = versus
            by_level = bd_by_level(curves, SUBJECT)
            table["by_psnr"] = by_level
            if results:
                per_image = bd_per_image(image_curves(results), SUBJECT, method)
                table["per_image"] = per_image
        md = table_markdown(table, versus, per_image, by_level)
        if avif_choice:
            table["avif"] = avif_choice
            md += avif_mod.markdown(avif_choice)
        write_json(table, out / "bd_rate.json")
        (out / "bd_rate.md").write_text(md)
        return by_level
    msg = f"anchor {anchor!r} produced no results (see 'skipped' in rd.json)"
    warn(PROG, f"no BD-rate table: {msg}")
    write_json({"anchor": anchor, "rows": [], "error": msg}, out / "bd_rate.json")
    (out / "bd_rate.md").write_text(f"# BD-rate\n\nNo table: {msg}.\n")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a one-line message on bad arguments)."""
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
