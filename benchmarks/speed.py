"""Speed benchmark: lcodec's public API against CompressAI's reference path, same weights.

For every image both paths go from a uint8 array to bytes and back. Each timing is the median
of ``--repeats`` runs after one untimed warm-up, with CUDA synchronized around every run.
lcodec's time is also split into its stages (analysis, entropy coding, synthesis), timed on
the same network. The ratios are lcodec's total time over the reference's, over all images.

    python -m benchmarks.speed --data DIR --json OUT.json [--device cpu|cuda] [--quality Q]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from codec.hardware import cpu_model

from .common.cli import (
    Parser,
    UsageError,
    add_malloc_flag,
    apply_malloc_flag,
    image_paths,
    require,
    run,
)
from .common.images import image_name, load_rgb
from .common.jsonutil import write_json
from .common.timing import timed

PROG = "python -m benchmarks.speed"
STAGES = ("analysis", "entropy_encode", "entropy_decode", "synthesis")


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="Encode/decode speed of lcodec against CompressAI.")
    p.add_argument("--data", required=True, help="folder of PNG/JPEG images (searched recursively)")
    p.add_argument("--json", required=True, help="where to write the results")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--quality", type=float, default=50.0, help="lcodec quality 0-100 (default 50)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per image (default 5)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--weights", default=None, help="lcodec weights name or .safetensors path")
    p.add_argument(
        "--precision",
        default="float32",
        choices=("float32", "float16", "bfloat16"),
        help="lcodec's transform arithmetic (default float32; the reference stays float32)",
    )
    add_malloc_flag(p)
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="images in flight for the many-image throughput figure (0 skips it; default 2)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def quality_to_rate(codec_mod, quality: float, levels: int) -> float:
    """lcodec's own mapping when its API exposes one, else linear over the rate ladder."""
    for owner in ("net.ladder", "api", ""):  # where lcodec versions kept it, newest first
        mod = codec_mod
        for part in filter(None, owner.split(".")):
            mod = getattr(mod, part, None)
        fn = getattr(mod, "quality_to_rate", None)
        if fn is not None:
            break
    if fn is not None:
        return float(fn(quality, levels))
    return quality / 100 * (levels - 1)


def _path_stats(enc_s: float, dec_s: float, mpx: float, nbytes: int, px: int) -> dict:
    return {
        "enc_s": enc_s,
        "dec_s": dec_s,
        "enc_mpx_per_s": mpx / enc_s,
        "dec_mpx_per_s": mpx / dec_s,
        "bytes": nbytes,
        "bpp": 8 * nbytes / px,
    }


def bench_image(img, name: str, lc: dict, coder, device, repeats: int) -> dict:
    """Both paths, the stage split and peak memory for one image."""
    import codec

    from .common.memory import peak_memory
    from .common.metrics import psnr
    from .common.reference import synchronize, time_stages

    def sync() -> None:
        synchronize(device)

    h, w = img.shape[:2]
    mpx = h * w / 1e6

    def lc_enc() -> bytes:
        return codec.compress(img, **lc["enc"])

    data, lc_enc_s = timed(lc_enc, repeats, sync)
    rec, lc_dec_s = timed(lambda: codec.decompress(data, **lc["dec"]), repeats, sync)
    ref, ref_enc_s = timed(lambda: coder.encode(img), repeats, sync)
    ref_rec, ref_dec_s = timed(lambda: coder.decode(ref), repeats, sync)

    stage_runs = [time_stages(coder, img) for _ in range(repeats + 1)][1:]
    stages = {f"{k}_s": statistics.median(r[k] for r in stage_runs) for k in STAGES}

    mem = {}
    for key, fn in (
        ("lcodec_enc", lc_enc),
        ("lcodec_dec", lambda: codec.decompress(data, **lc["dec"])),
        ("compressai_enc", lambda: coder.encode(img)),
        ("compressai_dec", lambda: coder.decode(ref)),
    ):
        _, peak, delta = peak_memory(fn, device)
        mem[key] = {"peak_bytes": peak, "peak_above_start_bytes": delta}

    out = {
        "image": name,
        "width": w,
        "height": h,
        "megapixels": mpx,
        "lcodec": {
            **_path_stats(lc_enc_s, lc_dec_s, mpx, len(data), h * w),
            "psnr": psnr(img, rec),
            "memory": {"encode": mem["lcodec_enc"], "decode": mem["lcodec_dec"]},
        },
        "compressai": {
            **_path_stats(ref_enc_s, ref_dec_s, mpx, ref.num_bytes, h * w),
            "psnr": psnr(img, ref_rec),
            "memory": {"encode": mem["compressai_enc"], "decode": mem["compressai_dec"]},
        },
        "stages": stages,
    }
    return out


def throughput(pixels: list, lc: dict, workers: int, passes: int, sync) -> dict:
    """Megapixels/s over all images, one at a time and through ``compress_many`` /
    ``decompress_many`` with ``workers`` images in flight (median of ``passes``)."""
    import codec

    mpx = sum(p.shape[0] * p.shape[1] for p in pixels) / 1e6
    enc, dec = lc["enc"], lc["dec"]
    quality, device = enc["quality"], enc["device"]
    weights, precision = enc.get("weights"), enc.get("precision")
    files = [codec.compress(p, **enc) for p in pixels]
    runs = {
        "sequential_encode": lambda: [codec.compress(p, **enc) for p in pixels],
        "sequential_decode": lambda: [codec.decompress(f, **dec) for f in files],
        "pipelined_encode": lambda: list(
            codec.compress_many(
                pixels, quality, device, weights, workers=workers, precision=precision
            )
        ),
        "pipelined_decode": lambda: list(
            codec.decompress_many(files, device, weights, workers=workers, precision=precision)
        ),
    }
    out: dict = {"workers": workers, "images": len(pixels), "megapixels": mpx}
    for key, fn in runs.items():
        times = []
        for _ in range(passes):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        out[f"{key}_mpx_per_s"] = mpx / statistics.median(times)
    return out


def summarize(images: list[dict]) -> dict:
    """Totals, throughput and the stage split over all images."""
    mpx = sum(r["megapixels"] for r in images)
    summary = {"images": len(images), "megapixels": mpx}
    for path in ("lcodec", "compressai"):
        enc = sum(r[path]["enc_s"] for r in images)
        dec = sum(r[path]["dec_s"] for r in images)
        summary[path] = {
            "enc_s_total": enc,
            "dec_s_total": dec,
            "enc_s_mean": enc / len(images),
            "dec_s_mean": dec / len(images),
            "enc_mpx_per_s": mpx / enc,
            "dec_mpx_per_s": mpx / dec,
            "peak_memory_bytes": {
                op: max(r[path]["memory"][op]["peak_bytes"] for r in images)
                for op in ("encode", "decode")
            },
        }
    stages = {k: sum(r["stages"][f"{k}_s"] for r in images) for k in STAGES}
    enc_total = stages["analysis"] + stages["entropy_encode"]
    dec_total = stages["entropy_decode"] + stages["synthesis"]
    summary["stages"] = {
        **{f"{k}_s_total": v for k, v in stages.items()},
        "encode_share": {
            "analysis": stages["analysis"] / enc_total,
            "entropy": stages["entropy_encode"] / enc_total,
        },
        "decode_share": {
            "entropy": stages["entropy_decode"] / dec_total,
            "synthesis": stages["synthesis"] / dec_total,
        },
    }
    return summary


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    require("psutil")
    root, paths = image_paths(args.data, args.limit)
    if args.repeats < 1:
        raise UsageError("--repeats must be at least 1")
    if args.workers < 0:
        raise UsageError("--workers must be 0 or more")
    if not 0 <= args.quality <= 100:
        raise UsageError("--quality must be from 0 to 100")
    if args.device not in ("auto", "cpu", "cuda") and not args.device.startswith("cuda:"):
        raise UsageError(f"unknown device {args.device!r} (use auto, cpu or cuda)")

    import torch

    malloc = apply_malloc_flag(args.reuse_freed_memory)

    try:
        import codec
    except ImportError as e:
        raise UsageError(f"cannot import the codec package: {e}") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda, but torch sees no CUDA device")
    device_arg = None if args.device == "auto" else args.device
    extra = {"weights": args.weights} if args.weights else {}
    try:
        lm = codec.load_model(device=device_arg, precision=args.precision, **extra)
    except codec.CodecError as e:
        raise UsageError(f"cannot load lcodec's model: {e}") from None

    from tqdm import tqdm

    # The reference runs CompressAI's own layers (lcodec swaps in faster inference forms).
    from codec.net.zoo import load_network

    from .common.memory import describe
    from .common.reference import ReferenceCoder, model_device, synchronize

    model = load_network(lm.weights, lm.device)
    device = model_device(model)
    rate = quality_to_rate(codec, args.quality, model.levels)
    coder = ReferenceCoder(model, rate)
    lc = {
        "enc": {
            "quality": args.quality,
            "device": device_arg,
            "precision": args.precision,
            **extra,
        },
        "dec": {"device": device_arg, "precision": args.precision, **extra},
    }
    images, pixels = [], []
    for path in tqdm(paths, desc="speed", unit="img", disable=args.no_progress, file=sys.stderr):
        img = load_rgb(path)
        pixels.append(img)
        images.append(bench_image(img, image_name(path, root), lc, coder, device, args.repeats))
    many = None
    if args.workers:
        many = throughput(
            pixels, lc, args.workers, min(args.repeats, 3), lambda: synchronize(device)
        )

    summary = summarize(images)
    report = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "cpu_model": cpu_model(),
        "torch": torch.__version__,
        "compressai": _version("compressai"),
        "malloc": malloc,
        "threads": torch.get_num_threads(),
        "quality": args.quality,
        "precision": args.precision,
        "rate": rate,
        "model": getattr(getattr(lm, "weights", None), "model_id", None),
        "repeats": args.repeats,
        "timing": "median wall time of the repeats after one untimed warm-up; CUDA synchronized",
        "memory": describe(device),
        "paths": {
            "lcodec": "codec.compress(array) -> .lcz bytes; codec.decompress(bytes) -> array",
            "compressai": "array -> tensor, centred zero padding to a multiple of 64 "
            "(compressai.ops.compute_padding), CompressAI's compress of z and y with the gain "
            "after g_a (MeanScaleHyperprior's for a mean-scale model; ChannelGroupsLatentCodec "
            "over CheckerboardLatentCodec for a context model); decompress with the inverse "
            "gain before g_s, crop, 8-bit array. bytes are the entropy-coded strings only.",
            "stages": "analysis = gains + g_a; entropy_encode = h_a, z and y coding (with the "
            "z decode and h_s the encoder needs); entropy_decode = z decode + h_s + y decode; "
            "synthesis = inverse gain + g_s",
        },
        "encode_ratio_vs_compressai": summary["lcodec"]["enc_s_total"]
        / summary["compressai"]["enc_s_total"],
        "decode_ratio_vs_compressai": summary["lcodec"]["dec_s_total"]
        / summary["compressai"]["dec_s_total"],
        "summary": summary,
        "throughput": many,
        "images": images,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(report, out)
    print(
        f"encode {report['encode_ratio_vs_compressai']:.2f}x, "
        f"decode {report['decode_ratio_vs_compressai']:.2f}x CompressAI's time; wrote {out}"
    )
    return 0


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a one-line message on bad arguments)."""
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
