"""Checkpoint -> shipped weights: fp16 safetensors plus a manifest with its sha256 and RD points.

The weights are rounded to fp16 *before* ``update()`` builds the entropy tables, so the tables
describe exactly the network a user loads. Entropy-model parameters and gains stay in fp32:
they are small and the tables depend on them.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save
from tqdm import tqdm

from .. import metrics
from ..errors import CodecError
from ..files import write_atomic
from ..net import build_model
from ..net.msh_gain import ARCHITECTURE
from ..net.zoo import WEIGHTS_DIR, sha256_file
from .data import list_images

FP32_PREFIXES = ("entropy_bottleneck.", "gaussian_conditional.", "log_gain", "log_inv_gain")


def _shipped_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if v.is_floating_point() and not k.startswith(FP32_PREFIXES):
            v = v.half()
        out[k] = v
    return out


def read_checkpoint(path: str | Path) -> dict:
    """A training checkpoint's contents, or a one-line error for any other file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except OSError:
        raise  # unreadable: the command line names the file and the reason
    except Exception:  # not a torch file: its unpickler raises whatever it meets
        state = None
    if not isinstance(state, dict) or not {"model", "config", "step"} <= state.keys():
        raise CodecError(f"{path}: not a training checkpoint (lcodec train writes checkpoint.pt)")
    return state


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    name: str,
    val: str | Path | None = None,
    qualities: tuple[float, ...] = (10, 50, 90),
    average: bool = True,
) -> Path:
    """Write ``out_dir/name.safetensors`` and ``out_dir/name.json``; returns the weights path.

    With ``average`` the moving average of the weights is exported when the run kept one.
    """
    if (
        Path(out_dir).resolve() == WEIGHTS_DIR.resolve()
        and (Path(out_dir) / name).with_suffix(".safetensors").exists()
    ):
        raise CodecError(
            f"release {name!r} exists: files written with it must keep decoding, so a release "
            "is never replaced; export under a new name"
        )
    state = read_checkpoint(checkpoint)
    cfg = state["config"]
    architecture = cfg.get("architecture", ARCHITECTURE)
    model = build_model(architecture, cfg["N"], cfg["M"], tuple(cfg["lambdas"]))
    model.load_state_dict(state["model"])
    averaged = average and bool(state.get("ema"))
    if averaged:
        model.load_state_dict({**model.state_dict(), **state["ema"]["weights"]})
    with torch.no_grad():  # round the shipped tensors to fp16 first, then build tables from them
        rounded = {
            k: v.float() if v.is_floating_point() else v for k, v in _shipped_state(model).items()
        }
    model.load_state_dict(rounded)
    model.update(force=True, update_quantiles=True)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.safetensors"
    write_atomic(path, save(_shipped_state(model)), force=True, mode=0o644)
    log = state.get("log", {})
    manifest = {
        "name": name,
        "architecture": architecture,
        "N": cfg["N"],
        "M": cfg["M"],
        "lambdas": list(cfg["lambdas"]),
        "distortion": cfg.get("distortion", "mse"),
        "quality_mapping": "rate = quality / 100 * (len(lambdas) - 1)",
        "steps": state["step"],
        "batch": cfg["batch"],
        "crop": cfg["crop"],
        "lr": cfg["lr"],
        "data": {"folder": Path(cfg["data"]).name, "images": len(list_images(cfg["data"]))},
        "hardware": log.get("hardware", "unknown"),
        "wall_s": round(log.get("wall_s", 0.0), 1),
        "stages": training_stages(state),
        "exported": datetime.date.today().isoformat(),
        "sha256": sha256_file(path),
        "averaged": averaged,
    }
    manifest["total_steps"] = sum(st["steps"] for st in manifest["stages"])
    manifest["total_wall_s"] = round(sum(st["wall_s"] for st in manifest["stages"]), 1)
    _write_manifest(path, manifest)
    if val is not None:
        manifest["rd"] = measure_rd(path, val, qualities)
        _write_manifest(path, manifest)
    return path


def training_stages(state: dict, depth: int = 0) -> list[dict]:
    """This run and the runs it started from (``--init-from``), oldest first.

    A run that continues another starts at step 0, so the history of the shipped weights is the
    chain of its ancestors; each is read from its checkpoint or manifest while it still exists.
    """
    cfg, log = state["config"], state.get("log", {})
    stage = {
        "steps": state["step"],
        "wall_s": round(log.get("wall_s", 0.0), 1),
        "batch": cfg["batch"],
        "crop": cfg["crop"],
        "lr": cfg["lr"],
        "rungs": len(cfg["lambdas"]),
        # The ladder's ends: quality 0 and 100 train at these lambdas.
        "lambda_range": [cfg["lambdas"][0], cfg["lambdas"][-1]],
        # The crop sampler's seed: stages with the same seed see the same crops in the same order.
        "seed": cfg.get("seed", 0),
        "rate_balance": cfg.get("rate_balance", 0.0),
        "bf16": log.get("amp", bool(cfg.get("amp"))),
        "ema": cfg.get("ema", 0.0),
        "schedule": cfg.get("schedule", "cosine"),
        "hard_rounding": cfg.get("hard_rounding", False),
        "distortion": cfg.get("distortion", "mse"),
        "hardware": log.get("hardware", "unknown"),
    }
    source = cfg.get("init_from")
    earlier: list[dict] = []
    if source and depth < 16:
        src = Path(source)
        if src.suffix == ".safetensors" and src.with_suffix(".json").is_file():
            prior = json.loads(src.with_suffix(".json").read_text())
            earlier = prior.get("stages") or [
                {k: prior.get(k) for k in ("steps", "wall_s", "batch", "crop", "lr", "hardware")}
            ]
        elif src.is_file():
            earlier = training_stages(
                torch.load(src, map_location="cpu", weights_only=False), depth + 1
            )
        else:
            earlier = [{"from": src.name, "steps": 0, "wall_s": 0.0, "note": "source not found"}]
    return earlier + [stage]


def _write_manifest(path: Path, manifest: dict) -> None:
    mpath = path.with_suffix(".json")
    write_atomic(mpath, (json.dumps(manifest, indent=2) + "\n").encode(), force=True)


def measure_rd(weights: str | Path, val: str | Path, qualities: tuple[float, ...]) -> list[dict]:
    """Real files, real decodes: mean bpp and PSNR-RGB per quality over a folder of images."""
    from ..api import decompress, encode
    from ..image import to_rgb_array

    images = [to_rgb_array(p) for p in list_images(val)]
    points = []
    for q in qualities:
        bpp, psnr = [], []
        for img in tqdm(images, desc=f"rd q={q}", leave=False):
            data = encode(img, q, device="cpu", weights=str(weights)).data
            rec = decompress(data, device="cpu", weights=str(weights))
            bpp.append(metrics.bpp(len(data), img.shape[0] * img.shape[1]))
            psnr.append(metrics.psnr(img, rec))
        points.append(
            {
                "quality": q,
                "bpp": round(float(np.mean(bpp)), 4),
                "psnr": round(float(np.mean(psnr)), 3),
                "images": len(images),
            }
        )
    return points
