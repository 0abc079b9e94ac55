"""Phase 1 of the context model: train its entropy model on cached latents, transforms frozen.

With the analysis and synthesis transforms frozen, the distortion does not depend on the
entropy model (rounding around any mean leaves the same error distribution), so the loss is
the rate alone. The analysis runs once per training photo; every step then costs only the
hyper-transforms and context networks, at 1/256 of the pixels. The rate term is the mean of
log bits per pixel, so every quality counts by its relative saving, as a BD-rate does.

    python -m codec.train.latents --data TRAIN --val VAL --init-from WEIGHTS --out runs/ctx1
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from tqdm import tqdm

from ..hardware import cpu_model, native_bf16
from ..net.elic_gain import ARCHITECTURE as ARCH
from ..net.elic_gain import CONTEXT_NETWORKS, GROUPS, from_mean_scale
from ..net.zoo import read_state
from .data import list_images
from .loop import EMA, StopRequests, TrainingClock


def load_state(path: str) -> tuple[dict, tuple[float, ...]]:
    """A mean-scale state dict and its lambda ladder, from exported weights or a checkpoint."""
    if path.endswith(".safetensors"):
        state = read_state(path)
        lambdas = json.loads(Path(path).with_suffix(".json").read_text())["lambdas"]
    else:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        state, lambdas = ckpt["model"], ckpt["config"]["lambdas"]
    return state, tuple(lambdas)


@torch.no_grad()
def cache_latents(model, root: str, limit: int | None = None) -> list[torch.Tensor]:
    """The ungained latent g_a(x) of every photo of a folder, float16, (M, h, w) each."""
    from PIL import Image, ImageOps

    out = []
    paths = list_images(root)[:limit]
    for p in tqdm(paths, desc=f"analyse {Path(root).name}", unit="photo"):
        with Image.open(p) as im:
            rgb = ImageOps.exif_transpose(im).convert("RGB")
            x = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
            x = x.reshape(rgb.height, rgb.width, 3).permute(2, 0, 1)[None].float() / 255
        h, w = x.shape[-2:]
        x = torch.nn.functional.pad(x, (0, (-w) % 64, 0, (-h) % 64), mode="replicate")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=native_bf16(torch.device("cpu"))):
            out.append(model.g_a(x.contiguous(memory_format=torch.channels_last))[0].half())
    return out


class LatentCrops:
    """Random latent crops with flips, each paired with a random rate on the model's ladder."""

    def __init__(self, latents: list[torch.Tensor], size: int, levels: int, seed: int):
        self.latents = [y for y in latents if min(y.shape[-2:]) >= size]
        self.size, self.levels = size, levels
        self.gen = torch.Generator().manual_seed(seed)

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        s, g = self.size, self.gen
        crops = []
        for _ in range(n):
            y = self.latents[int(torch.randint(len(self.latents), (1,), generator=g))]
            i = int(torch.randint(y.shape[-2] - s + 1, (1,), generator=g))
            j = int(torch.randint(y.shape[-1] - s + 1, (1,), generator=g))
            c = y[:, i : i + s, j : j + s]
            if torch.rand(1, generator=g) < 0.5:
                c = c.flip(-1)
            crops.append(c)
        rate = torch.rand(n, generator=g) * (self.levels - 1)
        return torch.stack(crops).float(), rate


def bits(out: dict) -> torch.Tensor:
    """Bits per sample of a batch, y and z together."""
    total = 0
    for lk in out["likelihoods"].values():
        total = total + (-torch.log2(lk)).flatten(1).sum(1)
    return total


@torch.no_grad()
def evaluate(model, latents: list[torch.Tensor], rates: tuple[float, ...]) -> dict[float, float]:
    """Bits per pixel of whole val latents at each rate, rounded as the coder rounds."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    res = {}
    for r in rates:
        total, pixels = 0.0, 0
        for y0 in latents:
            g, _ = model.gains(torch.tensor([r]))
            out = model.entropy_forward(y0[None].float() * g)
            total += float(bits(out).sum())
            pixels += y0.shape[-2] * y0.shape[-1] * 256
        res[r] = total / pixels
    for m, mode in modes.items():
        m.train(mode)
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="training photos")
    ap.add_argument("--val", help="photos for the progress report (rate only)")
    ap.add_argument("--init-from", required=True, help="mean-scale weights (.safetensors or .pt)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--groups", default=",".join(map(str, GROUPS)))
    ap.add_argument("--order", choices=("bits", "none"), default="bits")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=16, help="latent crop (x16 pixels)")
    ap.add_argument("--lr", type=float, default=5e-4, help="new context networks")
    ap.add_argument(
        "--lr-hyper", type=float, default=0.0, help="warm-started hyper path (0: frozen)"
    )
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--time-budget", type=float, default=3600.0)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, help="use only the first photos (tests)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    groups = tuple(int(v) for v in a.groups.split(","))

    state, lambdas = load_state(a.init_from)
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        order = ckpt["order"]
    else:
        ckpt, order = None, None
    model = from_mean_scale(state, None, lambdas, groups).eval()
    cache = out / "latents.pt"
    if cache.exists():
        cached = torch.load(cache, weights_only=False)
    else:
        cached = {"train": cache_latents(model, a.data, a.limit)}
        if a.val:
            cached["val"] = cache_latents(model, a.val, a.limit)
        torch.save(cached, cache)
    if ckpt is None and a.order == "bits":
        order = channel_order(model, cached["train"][:32])
    if order is not None:  # latents were cached in the original channel order
        cached = {k: [y[order] for y in v] for k, v in cached.items()}
    model = from_mean_scale(state, order, lambdas, groups)
    new = [p for n, p in model.named_parameters() if n.startswith(CONTEXT_NETWORKS)]
    frozen = a.lr_hyper == 0  # phase 1 proper: only the new networks learn
    hyper = [
        p
        for n, p in model.named_parameters()
        if n.startswith(HYPER) and not n.endswith("quantiles") and not frozen
    ]
    aux = [p for n, p in model.named_parameters() if n.endswith("quantiles") and not frozen]
    trained = {id(p) for p in new + hyper + aux}
    for p in model.parameters():
        p.requires_grad_(id(p) in trained)
    groups_ = [{"params": new, "lr": a.lr}] + (
        [{"params": hyper, "lr": a.lr_hyper}] if hyper else []
    )
    opt = torch.optim.Adam(groups_)
    aux_opt = torch.optim.Adam(aux or [torch.zeros(1, requires_grad=True)], lr=1e-3)
    step, wall, history = 0, 0.0, []
    ema_state = None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        aux_opt.load_state_dict(ckpt["aux_opt"])
        step, wall, history, ema_state = ckpt["step"], ckpt["wall_s"], ckpt["history"], ckpt["ema"]
    ema = EMA(model, a.ema, ema_state)
    crops = LatentCrops(cached["train"], a.crop, model.levels, a.seed + step)
    rates = (0.0, 4.0, 8.0)
    if not history and a.val:
        history.append({"step": 0, "val_bpp": evaluate(model, cached["val"], rates)})
        print(json.dumps(history[-1]), flush=True)

    def save() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "aux_opt": aux_opt.state_dict(),
                "ema": ema.state_dict(),
                "step": step,
                "wall_s": wall,
                "history": history,
                "order": order,
                "groups": groups,
                "lambdas": lambdas,
            },
            tmp,
        )
        tmp.replace(ckpt_path)
        record = {k: getattr(a, k) for k in ("lr", "batch", "crop", "seed", "init_from")}
        record.update(step=step, wall_s=wall, hardware=f"cpu: {cpu_model()}, {a.threads} threads")
        save_start(out / "phase1.pt", ema.averaged(model), lambdas, record)

    bar = tqdm(desc="phase 1", unit="step", initial=step, mininterval=10)
    model.train()
    if frozen:  # the hyper-latent rounded as the coder rounds it
        model.entropy_bottleneck.eval()
    with StopRequests() as stop, TrainingClock(wall) as clock:
        while wall < a.time_budget and not stop.requested:
            progress = wall / a.time_budget
            scale = min(1.0, (step + 1) / a.warmup) * 0.5 * (1 + math.cos(math.pi * progress))
            opt.param_groups[0]["lr"] = a.lr * scale
            if hyper:
                opt.param_groups[1]["lr"] = a.lr_hyper * scale
            y0, rate = crops.batch(a.batch)
            g, _ = model.gains(rate)
            out_ = model.entropy_forward(y0 * g.detach())
            bpp = bits(out_) / (a.crop * a.crop * 256)
            loss = torch.log(bpp).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(new + hyper, 1.0)
            opt.step()
            if aux:
                aux_opt.zero_grad(set_to_none=True)
                model.entropy_bottleneck.loss().backward()
                aux_opt.step()
            ema.update(model)
            step += 1
            wall = clock.tick()
            bar.update(1)
            bar.set_postfix(bpp=f"{bpp.mean().item():.3f}")
            if step % a.eval_every == 0 and a.val:
                live = {k: v.clone() for k, v in model.state_dict().items()}
                model.load_state_dict(ema.averaged(model))
                history.append(
                    {"step": step, "wall_s": wall, "val_bpp": evaluate(model, cached["val"], rates)}
                )
                model.load_state_dict(live)
                print(json.dumps(history[-1]), flush=True)
                save()
    save()
    bar.close()


def save_start(path: Path, state: dict, lambdas: tuple[float, ...], record: dict) -> None:
    """The averaged weights as a starting point for ``lcodec train --architecture elic-gain
    --init-from``, with this phase's record for the exported manifest's training stages."""
    tmp = path.with_suffix(".tmp")
    cfg = {"lambdas": list(lambdas), "architecture": ARCH, "lr": record["lr"]}
    cfg.update({k: record[k] for k in ("batch", "crop", "seed", "init_from")})
    cfg["crop"] = 16 * cfg["crop"]  # in pixels, as every stage records it
    log = {"wall_s": record["wall_s"], "hardware": record["hardware"], "amp": False}
    ckpt = {"model": state, "config": {**cfg, "phase": "entropy model on cached latents"}}
    torch.save({**ckpt, "step": record["step"], "log": log}, tmp)
    tmp.replace(path)


HYPER = ("h_a", "h_s", "entropy_bottleneck")


@torch.no_grad()
def channel_order(model, latents: list[torch.Tensor]) -> torch.Tensor:
    """Latent channels by the bits the mean-scale model spends on them, most first, over the
    whole rate ladder."""
    model.eval()
    per_channel = 0
    for r in range(model.levels):
        g, _ = model.gains(torch.tensor([float(r)]))
        for y0 in latents:
            out = model.entropy_forward(y0[None].float() * g)
            per_channel = per_channel + (-torch.log2(out["likelihoods"]["y"])).sum((0, 2, 3))
    return torch.argsort(per_channel, descending=True)


if __name__ == "__main__":
    main()
