"""Training speed: lcodec's training step against CompressAI's example training loop.

Both train the same network size (a 128/192 mean-scale hyperprior) on the same batch and crop.
The reference does what CompressAI's ``examples/train.py`` does each step: a DataLoader that
opens and crops image files, ``RateDistortionLoss`` at one lambda, Adam, gradient clipping at
1.0 and the aux optimiser. lcodec's step is ``codec.train.loop.train_step`` fed from the
in-memory ``CropSampler`` (every crop at its own rate); its variants add channels-last layout,
bf16 autocast of the transforms (``lcodec-bf16``: channels-last too, as ``lcodec train`` runs
on CPUs with AVX-512 BF16 or AMX) and ``torch.compile``. Each path runs ``--warmup`` untimed
steps, then ``--steps`` timed ones.

    python -m benchmarks.train_speed --data DIR --json OUT.json [--device cpu|cuda]
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .common.cli import Parser, UsageError, add_malloc_flag, apply_malloc_flag, image_paths, run
from .common.jsonutil import write_json

PROG = "python -m benchmarks.train_speed"
VARIANTS = (
    "compressai",
    "lcodec",
    "lcodec-channels-last",
    "lcodec-compile",
    "lcodec-bf16",
    "lcodec-bf16-compile",
)


def build_parser() -> Parser:
    p = Parser(prog=PROG, description="Training steps/s of lcodec against CompressAI's loop.")
    p.add_argument("--data", required=True, help="folder of training images")
    p.add_argument("--json", required=True, help="where to write the results")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch", type=int, default=8, help="crops per step (default 8)")
    p.add_argument("--crop", type=int, default=128, help="crop side in pixels (default 128)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per variant (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--limit", type=int, default=40, help="images to load (default 40)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--architecture",
        default="msh-gain",
        choices=("msh-gain", "elic-gain"),
        help="the network trained: the mean-scale model, or the context model (CompressAI's "
        "example loop then runs around lcodec's network of it)",
    )
    add_malloc_flag(p)
    p.add_argument(
        "--amp", action="store_true", help="bf16 autocast for every lcodec variant on CUDA"
    )
    p.add_argument(
        "--variants",
        default="compressai,lcodec,lcodec-channels-last,lcodec-bf16",
        help=f"comma-separated, from {', '.join(VARIANTS)}",
    )
    return p


def _timed_steps(step, sync, warmup: int, steps: int) -> list[float]:
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def compressai_loop(paths: list[Path], batch: int, crop: int, device, architecture: str):
    """A step of CompressAI's example loop; returns the step function. The network is
    CompressAI's MeanScaleHyperprior, or for another architecture lcodec's network of it (the
    example loop around the same network)."""
    import torch
    from compressai.losses import RateDistortionLoss
    from compressai.models import MeanScaleHyperprior
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    class Files(Dataset):
        """Opens and crops an image file per sample, as compressai.datasets.ImageFolder does."""

        def __init__(self):
            self.t = transforms.Compose([transforms.RandomCrop(crop), transforms.ToTensor()])

        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            with Image.open(paths[i]) as im:
                return self.t(im.convert("RGB"))

    loader = DataLoader(Files(), batch_size=batch, shuffle=True, drop_last=True, num_workers=2)
    if architecture == "msh-gain":
        model = MeanScaleHyperprior(128, 192).to(device).train()
    else:
        from codec.net import build_model
        from codec.net.ladder import DEFAULT_LAMBDAS

        model = build_model(architecture, 128, 192, DEFAULT_LAMBDAS).to(device).train()
    params = {n for n, p in model.named_parameters() if not n.endswith(".quantiles")}
    named = dict(model.named_parameters())
    opt = torch.optim.Adam((named[n] for n in sorted(params)), lr=1e-4)
    aux_opt = torch.optim.Adam((named[n] for n in named if n not in params), lr=1e-3)
    criterion = RateDistortionLoss(lmbda=0.013)
    batches = iter(())

    def step():
        nonlocal batches
        try:
            x = next(batches)
        except StopIteration:
            batches = iter(loader)
            x = next(batches)
        x = x.to(device)
        opt.zero_grad()
        aux_opt.zero_grad()
        out = criterion(model(x), x)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        aux = model.aux_loss()
        aux.backward()
        aux_opt.step()

    return step


def lcodec_loop(
    data: str, batch: int, crop: int, device, variant: str, amp: bool, limit: int, arch: str
):
    """A step of lcodec's own loop (codec.train.loop.train_step); returns the step function."""
    import torch

    from codec.net import build_model
    from codec.net.ladder import DEFAULT_LAMBDAS
    from codec.net.msh_gain import ARCHITECTURE
    from codec.train.data import CropSampler
    from codec.train.loop import split_parameters, train_step

    sampler = CropSampler(data, crop, limit=limit)
    model = build_model(arch or ARCHITECTURE, 128, 192, DEFAULT_LAMBDAS).to(device).train()
    bf16 = variant.startswith("lcodec-bf16")
    channels_last = bf16 or variant in ("lcodec-channels-last", "lcodec-compile")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    main, aux = split_parameters(model)
    opt = torch.optim.Adam(main, lr=1e-4)
    aux_opt = torch.optim.Adam(aux, lr=1e-3)
    net = torch.compile(model) if variant.endswith("-compile") else model
    use_amp = bf16 or (amp and device.type == "cuda")

    def step():
        x = sampler.batch(batch).to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        train_step(model, net, opt, aux_opt, x, 1.0, use_amp)

    return step


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    _, paths = image_paths(args.data, args.limit)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise UsageError(f"unknown variant {unknown[0] if unknown else ''!r}")
    if args.batch < 1 or args.crop < 64 or args.crop % 64 or args.steps < 1 or args.warmup < 0:
        raise UsageError("--batch >= 1, --crop a multiple of 64, --steps >= 1, --warmup >= 0")

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda, but torch sees no CUDA device")
    device = torch.device(args.device)
    malloc = apply_malloc_flag(args.reuse_freed_memory)
    if args.threads:
        torch.set_num_threads(args.threads)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    from codec.hardware import cpu_flags, cpu_model, native_bf16

    results = {}
    for variant in variants:
        torch.manual_seed(0)
        if variant == "compressai":
            step = compressai_loop(paths, args.batch, args.crop, device, args.architecture)
        else:
            step = lcodec_loop(
                args.data,
                args.batch,
                args.crop,
                device,
                variant,
                args.amp,
                args.limit,
                args.architecture,
            )
        times = _timed_steps(step, sync, args.warmup, args.steps)
        mean = sum(times) / len(times)
        results[variant] = {
            "step_s_mean": mean,
            "step_s_min": min(times),
            "steps_per_s": 1 / mean,
            "megapixels_per_s": args.batch * args.crop**2 / 1e6 / mean,
        }
        print(f"{variant}: {1 / mean:.3f} steps/s ({mean:.3f} s/step)", file=sys.stderr)
        del step
    report = {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "cpu_flags": [f for f in cpu_flags() if "bf16" in f or f.startswith(("amx", "avx512f"))],
        "native_bf16": native_bf16(device),
        "malloc": malloc,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "architecture": args.architecture,
        "batch": args.batch,
        "crop": args.crop,
        "images": len(paths),
        "timed_steps": args.steps,
        "warmup_steps": args.warmup,
        "amp": bool(args.amp and device.type == "cuda"),
        "timing": "mean wall time of the timed steps, CUDA synchronized; data loading included",
        "results": results,
    }
    if "compressai" in results:
        ref = results["compressai"]["steps_per_s"]
        for r in results.values():
            r["speedup_vs_compressai"] = r["steps_per_s"] / ref
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(report, out)
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a one-line message on bad arguments)."""
    return run(PROG, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
