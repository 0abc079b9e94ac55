"""What one variable-rate model costs against fixed-lambda models trained with the same budget.

Trains (or resumes) three runs with the same recipe and step count: the variable-rate model on
the full lambda ladder, and one fixed-lambda model per ``--fixed`` value (a one-rung ladder, so
the same network and loss). With ``--init-from`` all three continue from the same checkpoint,
which measures what specialising a trained model to one rate would buy at that budget.

Each is exported and coded for real on a validation folder. The cost is the extra rate the
variable-rate model needs for the PSNR each fixed model reaches, read off its own curve
(piecewise linear in log-rate). Not a BD-rate over the fixed points: with two points the chord
between them lies below any concave curve, which would flatter the variable-rate model.

    python -m benchmarks.vbr_cost --data TRAIN --val VAL --out runs/vbr_cost --json OUT.json
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from codec import metrics

from .common.bdrate import monotone_curve
from .common.cli import Parser, UsageError, image_paths, run
from .common.jsonutil import write_json

PROG = "python -m benchmarks.vbr_cost"


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="Variable rate against fixed-lambda models, same budget.")
    p.add_argument("--data", required=True, help="folder of training images")
    p.add_argument("--val", required=True, help="folder of validation images")
    p.add_argument("--out", required=True, help="folder for the runs (re-running resumes)")
    p.add_argument("--json", required=True, help="where to write the results")
    p.add_argument(
        "--fixed", default="0.0035,0.025", help="comma-separated lambdas of the fixed models"
    )
    p.add_argument("--steps", type=int, default=900, help="steps per run (default 900)")
    p.add_argument("--batch", type=int, default=8, help="crops per step (default 8)")
    p.add_argument("--crop", type=int, default=128, help="crop side (default 128)")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (default 5e-4)")
    p.add_argument("--warmup", type=int, default=100, help="warm-up steps (default 100)")
    p.add_argument("--N", type=int, default=128, help="transform channels (default 128)")
    p.add_argument("--M", type=int, default=192, help="latent channels (default 192)")
    p.add_argument("--limit", type=int, default=None, help="validation images to use (all)")
    p.add_argument(
        "--init-from",
        default=None,
        help="start every run from this checkpoint or weights (default: from scratch)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    return p


def rate_at(curve: Sequence[tuple[float, float]], psnr: float) -> float:
    """Rate a (bpp, PSNR) curve needs for ``psnr``: linear in log-rate, NaN outside the curve.

    Points that do not raise PSNR over a cheaper one are dropped first, as for BD-rates.
    """
    rates, ps = monotone_curve([p[0] for p in curve], [p[1] for p in curve])
    if len(ps) < 2 or psnr < ps[0] or psnr > ps[-1]:
        return math.nan
    return float(np.exp(np.interp(psnr, ps, np.log(rates))))


def train_run(args, name: str, lambdas: tuple[float, ...]) -> tuple[Path, dict]:
    """Train (or finish) one run and export it; returns its weights and training figures."""
    import torch

    from codec.train.export import export_checkpoint
    from codec.train.loop import TrainConfig, train

    out = Path(args.out) / name
    cfg = TrainConfig(
        data=args.data,
        out=str(out),
        steps=args.steps,
        batch=args.batch,
        crop=args.crop,
        lr=args.lr,
        warmup=args.warmup,
        N=args.N,
        M=args.M,
        lambdas=lambdas,
        threads=args.threads,
        ckpt_every=100,
        init_from=args.init_from,
    )
    print(f"{name}: training {args.steps} steps on lambdas {list(lambdas)}", file=sys.stderr)
    ckpt = train(cfg)
    weights = export_checkpoint(ckpt, out / "export", f"vbr-cost-{name}")
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    return weights, {"steps": state["step"], "wall_s": round(state["log"]["wall_s"], 1)}


def measure(weights: Path, images: list[np.ndarray], quality: float) -> tuple[float, float]:
    """Mean bpp and PSNR-RGB of real files over the images at one quality."""
    from codec.api import decompress, encode

    bpp, psnr = [], []
    for img in images:
        data = encode(img, quality, device="cpu", weights=str(weights)).data
        rec = decompress(data, device="cpu", weights=str(weights))
        bpp.append(metrics.bpp(len(data), img.shape[0] * img.shape[1]))
        psnr.append(metrics.psnr(img, rec))
    return float(np.mean(bpp)), float(np.mean(psnr))


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    image_paths(args.data, None)
    _, val_paths = image_paths(args.val, args.limit)
    try:
        fixed = sorted(float(v) for v in args.fixed.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--fixed must be comma-separated numbers, not {args.fixed!r}") from None
    if not fixed or any(v <= 0 for v in fixed):
        raise UsageError("--fixed needs at least one positive lambda")
    if args.init_from and not Path(args.init_from).is_file():
        raise UsageError(f"--init-from: no such file: {args.init_from}")
    if args.steps < 1 or args.batch < 1 or args.crop < 64 or args.crop % 64:
        raise UsageError("--steps >= 1, --batch >= 1, --crop a multiple of 64")

    import torch

    from codec.image import to_rgb_array
    from codec.net.ladder import DEFAULT_LAMBDAS

    if args.threads:
        torch.set_num_threads(args.threads)
    ladder = tuple(DEFAULT_LAMBDAS)
    t0 = time.time()
    vbr_weights, vbr_train = train_run(args, "vbr", ladder)
    fixed_runs = {lam: train_run(args, f"fixed-{lam:g}", (lam,)) for lam in fixed}

    images = [to_rgb_array(p) for p in val_paths]
    rungs = len(ladder) - 1
    vbr_curve = []
    for i in range(len(ladder)):
        bpp, psnr = measure(vbr_weights, images, 100 * i / rungs)
        vbr_curve.append(
            {"quality": 100 * i / rungs, "lambda": ladder[i], "bpp": bpp, "psnr": psnr}
        )
        print(f"vbr q={100 * i / rungs:.1f}: {bpp:.4f} bpp {psnr:.2f} dB", file=sys.stderr)
    curve = [(p["bpp"], p["psnr"]) for p in vbr_curve]

    points = []
    for lam, (weights, figures) in fixed_runs.items():
        bpp, psnr = measure(weights, images, 100)
        need = rate_at(curve, psnr)
        points.append(
            {
                "lambda": lam,
                "bpp": bpp,
                "psnr": psnr,
                "train": figures,
                "vbr_bpp_at_same_psnr": need,
                "rate_cost_pct": 100 * (need / bpp - 1) if math.isfinite(need) else math.nan,
            }
        )
        print(f"fixed {lam:g}: {bpp:.4f} bpp {psnr:.2f} dB; vbr needs {need:.4f}", file=sys.stderr)
    costs = [p["rate_cost_pct"] for p in points if math.isfinite(p["rate_cost_pct"])]
    report = {
        "recipe": {
            k: getattr(args, k) for k in ("steps", "batch", "crop", "lr", "warmup", "N", "M")
        },
        "init_from": Path(args.init_from).name if args.init_from else None,
        "threads": torch.get_num_threads(),
        "train_images": len(image_paths(args.data, None)[1]),
        "val_images": len(images),
        "vbr": {"lambdas": list(ladder), "train": vbr_train, "curve": vbr_curve},
        "fixed": points,
        "mean_rate_cost_pct": float(np.mean(costs)) if costs else math.nan,
        "method": "rate_cost: the VBR model's rate at each fixed model's PSNR, log-rate linear "
        "in PSNR between its two nearest rungs, over the fixed model's rate",
        "wall_s": round(time.time() - t0, 1),
    }
    write_json(report, args.json)
    print(f"mean rate cost of VBR: {report['mean_rate_cost_pct']:+.2f} %", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
