"""How often do entropy parameters disagree when the arithmetic changes, float path vs exact path?

For every image and quality, the scale indexes are recomputed under perturbations a decoder on
another machine could meet (another summation order, float64, 1 or 2 threads, oneDNN off) and
compared with the encoder's. A single differing index desynchronises the rANS decoder. Also
measures the rate-distortion and decode-time cost of the exact path against the float path.

    python -m benchmarks.determinism --data DIR --json OUT.json [--qualities 10,30,50,70,90]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from argparse import RawDescriptionHelpFormatter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

import codec
from codec import metrics
from codec.net.ladder import quality_to_rate

from .common.bdrate import bd_rate
from .common.cli import Parser, UsageError
from .common.cli import run as run_cli
from .common.images import find_images, load_rgb


def _float_hs(model, z_hat: torch.Tensor, split: int, dtype: torch.dtype) -> torch.Tensor:
    """The float hyper-synthesis with input channels summed in ``split`` groups, last first."""
    x = z_hat.to(dtype)
    layers = list(model.h_s)
    for layer in layers:
        if isinstance(layer, torch.nn.LeakyReLU):
            x = F.leaky_relu(x, layer.negative_slope)
            continue
        w, b = layer.weight.to(dtype), layer.bias.to(dtype)
        parts = []
        for idx in torch.arange(x.shape[1]).chunk(split):
            if isinstance(layer, torch.nn.ConvTranspose2d):
                parts.append(
                    F.conv_transpose2d(
                        x[:, idx], w[idx], None, layer.stride, layer.padding, layer.output_padding
                    )
                )
            else:
                parts.append(F.conv2d(x[:, idx], w[:, idx], None, layer.stride, layer.padding))
        acc = parts[-1]
        for p in reversed(parts[:-1]):
            acc = acc + p
        x = acc + b[None, :, None, None]
    scales = x[:, : model.M].float()
    return model.gaussian_conditional.build_indexes(scales)


def _perturbations(model, exact, z_hat):
    """(name, float indexes, exact indexes) under each perturbation."""

    def both(split, dtype):
        return _float_hs(model, z_hat, split, dtype), exact(z_hat.to(dtype), split=split)[0]

    yield ("split-3", *both(3, torch.float32))
    yield ("float64", *both(1, torch.float64))
    threads = torch.get_num_threads()
    for n in (1, 2):
        torch.set_num_threads(n)
        yield (f"threads-{n}", *both(2, torch.float32))
    torch.set_num_threads(threads)
    with torch.backends.mkldnn.flags(enabled=False):
        yield ("onednn-off", *both(1, torch.float32))


def context_run(weights: str, paths: list, qualities: list[float]) -> dict:
    """The context model's exact path: every table index of every pass, decoded again under
    each perturbation, against the encoder's."""
    from codec.entropy.elic_gain import ExactContext, decode_latents

    lm = codec.load_model(weights, device="cpu")
    model = lm.model
    variants = {
        "split-3": {"split": 3},
        "split-7": {"split": 7},
        "threads-1": {"threads": 1},
        "threads-2": {"threads": 2},
        "onednn-off": {"onednn": False},
    }
    out = {name: {"indexes": 0, "wrong": 0, "cases": 0, "cases_hit": 0} for name in variants}
    threads = torch.get_num_threads()
    for path in tqdm(paths, desc="context determinism"):
        img = load_rgb(path)
        for q in qualities:
            c = codec.bitstream.unpack(codec.compress(img, q, device="cpu", model=weights))
            ref: list = []
            with torch.inference_mode():
                decode_latents(lm.coder.exact, model, c.streams, c.z_shape, ref)
            ref_idx = torch.cat(ref)
            for name, v in variants.items():
                trace: list = []
                torch.set_num_threads(v.get("threads", threads))
                try:
                    with (
                        torch.inference_mode(),
                        torch.backends.mkldnn.flags(enabled=v.get("onednn", True)),
                    ):
                        ctx = ExactContext(model, "cpu", split=v.get("split", 1))
                        decode_latents(ctx, model, c.streams, c.z_shape, trace)
                finally:
                    torch.set_num_threads(threads)
                idx = torch.cat(trace)
                wrong = int((idx != ref_idx).sum()) if idx.shape == ref_idx.shape else idx.numel()
                m = out[name]
                m["indexes"] += ref_idx.numel()
                m["wrong"] += wrong
                m["cases"] += 1
                m["cases_hit"] += int(wrong > 0)
    return {"weights": lm.weights.model_id, "perturbations": out}


def run(data: str, qualities: list[float], limit: int | None, weights: str) -> dict:
    """Float (version 1) against exact (version 2) hyper-synthesis of a mean-scale release."""
    lm = codec.load_model(weights, device="cpu")
    model, exact = lm.model, lm.coder.exact
    paths = find_images(data, limit)
    mism = {"float": {}, "exact": {}}
    totals = {"float": {}, "exact": {}}
    rd = {1: {q: [] for q in qualities}, 2: {q: [] for q in qualities}}
    dec_t = {1: [], 2: []}
    for path in tqdm(paths, desc="determinism"):
        img = load_rgb(path)
        h, w = img.shape[:2]
        for q in qualities:
            with torch.inference_mode():
                c = codec.bitstream.unpack(codec.compress(img, q, device="cpu", model=weights))
                z_hat = model.entropy_bottleneck.decompress([c.streams[0]], c.z_shape)
                ref_f = model.gaussian_conditional.build_indexes(model.h_s(z_hat).chunk(2, 1)[0])
                ref_e = exact(z_hat)[0]
                for name, idx_f, idx_e in _perturbations(model, exact, z_hat):
                    for kind, idx, ref in (("float", idx_f, ref_f), ("exact", idx_e, ref_e)):
                        diff = int((idx != ref).sum())
                        m = mism[kind].setdefault(name, {"indexes": 0, "cases": 0, "cases_hit": 0})
                        m["indexes"] += diff
                        m["cases"] += 1
                        m["cases_hit"] += int(diff > 0)
                        totals[kind][name] = totals[kind].get(name, 0) + idx.numel()
            for version in (1, 2):
                enc = codec.encode(img, q, device="cpu", format_version=version, model=weights)
                t = time.perf_counter()
                out = codec.decompress(enc.data, device="cpu")
                dec_t[version].append(time.perf_counter() - t)
                rd[version][q].append((8 * len(enc.data) / (h * w), metrics.psnr(img, out)))
    for kind in mism:
        for name, m in mism[kind].items():
            m["index_rate"] = m["indexes"] / totals[kind][name]
            m["case_rate"] = m["cases_hit"] / m["cases"]
    curves = {
        v: [
            (float(np.mean([p[0] for p in pts])), float(np.mean([p[1] for p in pts])))
            for q, pts in sorted(rd[v].items())
        ]
        for v in rd
    }
    bd = bd_rate(
        [p[0] for p in curves[1]],
        [p[1] for p in curves[1]],
        [p[0] for p in curves[2]],
        [p[1] for p in curves[2]],
    )
    return {
        "images": len(paths),
        "qualities": qualities,
        "rates": [quality_to_rate(q, model.levels) for q in qualities],
        "mismatches": mism,
        "rd_float_v1": [{"bpp": b, "psnr": p} for b, p in curves[1]],
        "rd_exact_v2": [{"bpp": b, "psnr": p} for b, p in curves[2]],
        "bd_rate_exact_vs_float_percent": bd.value,
        "bd_notes": bd.notes,
        "decode_s_median": {
            "float_v1": statistics.median(dec_t[1]),
            "exact_v2": statistics.median(dec_t[2]),
        },
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> None:
    ap = Parser(
        prog="python -m benchmarks.determinism",
        description=__doc__,
        formatter_class=RawDescriptionHelpFormatter,
    )
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--qualities", default="10,30,50,70,90")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument(
        "--weights",
        default="lcodec-msh-gain",
        help="mean-scale release for the float/exact comparison (default lcodec-msh-gain)",
    )
    ap.add_argument(
        "--context-weights",
        default=None,
        help="a context-model (elic-gain) release or .safetensors: also decode its files "
        "again under every perturbation and count wrong table indexes",
    )
    args = ap.parse_args(argv)
    if not Path(args.data).is_dir():
        raise UsageError(f"no such folder: {args.data}")
    qualities = [float(q) for q in args.qualities.split(",")]
    result = run(args.data, qualities, args.limit, args.weights)
    if args.context_weights:
        result["context"] = context_run(
            args.context_weights, find_images(args.data, args.limit), qualities
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    for kind in ("float", "exact"):
        for name, m in result["mismatches"][kind].items():
            print(
                f"{kind:5s} {name:11s} cases with a wrong index: {m['cases_hit']}/{m['cases']}"
                f"  indexes wrong: {m['index_rate']:.2e}"
            )
    print(f"BD-rate exact vs float: {result['bd_rate_exact_vs_float_percent']}")
    print(f"decode median s: {result['decode_s_median']}")
    for name, m in result.get("context", {}).get("perturbations", {}).items():
        print(
            f"context {name:11s} cases with a wrong index: {m['cases_hit']}/{m['cases']}"
            f"  indexes wrong: {m['wrong']} of {m['indexes']}"
        )


if __name__ == "__main__":
    sys.exit(run_cli("python -m benchmarks.determinism", main, None))
