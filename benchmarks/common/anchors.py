"""Published rate-distortion curves (CompressAI's results files) to overlay on live ones.

The file maps method keys such as ``classical/VTM`` to lists of points with ``bpp``,
``psnr-rgb`` and ``ms-ssim-rgb`` (linear) or ``ms-ssim-db-rgb``. They are figures for one dataset
(Kodak for the shipped file) and are only comparable with a live run on that same dataset.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .curves import Curve
from .metrics import ms_ssim_db

#: The shipped file of CompressAI's Kodak figures.
DEFAULT_FILE = Path(__file__).parent.parent / "anchors" / "compressai_kodak.json"

#: A readable default overlay: the two CompressAI models closest to lcodec's network, measured
#: on 8-bit reconstructions like this harness, and the classical codecs people compare against.
DEFAULT_METHODS = (
    "compressai/bmshj2018-hyperprior/mse/cuda/8bit-decoded",
    "compressai/mbt2018-mean/mse/cuda/8bit-decoded",
    "classical/JPEG",
    "classical/WebP",
    "classical/BPG",
    "classical/VTM",
)


def load_methods(path: str | Path) -> dict:
    """The ``methods`` mapping of an anchors file."""
    data = json.loads(Path(path).read_text())
    methods = data.get("methods")
    if not isinstance(methods, dict):
        raise TypeError(f"{Path(path).name} has no 'methods' mapping")
    return methods


def _label(key: str) -> str:
    """A short legend label: 'VTM', 'bmshj2018-hyperprior mse' rather than the full key."""
    parts = key.split("/")
    if parts[0] == "classical":
        return parts[1]
    if parts[0] == "compressai" and len(parts) >= 3:
        return f"{parts[1]} {parts[2]}"
    return "/".join(parts[1:]) or key


def _point_ms_ssim_db(p: dict) -> float:
    if p.get("ms-ssim-db-rgb") is not None:
        return float(p["ms-ssim-db-rgb"])
    if p.get("ms-ssim-rgb") is not None:
        return ms_ssim_db(float(p["ms-ssim-rgb"]))
    return math.nan


def select(methods: dict, keys: list[str] | None) -> list[Curve]:
    """The curves for ``keys`` (default ``DEFAULT_METHODS``); unknown keys raise KeyError."""
    keys = list(DEFAULT_METHODS) if keys is None else keys
    missing = [k for k in keys if k not in methods]
    if missing:
        raise KeyError(", ".join(missing))
    curves = []
    for key in keys:
        points = sorted(methods[key]["points"], key=lambda p: float(p["bpp"]))
        c = Curve(key=key, label=_label(key), published=True)
        for p in points:
            c.bpp.append(float(p["bpp"]))
            c.psnr.append(float(p["psnr-rgb"]) if p.get("psnr-rgb") is not None else math.nan)
            c.ms_ssim_db.append(_point_ms_ssim_db(p))
        curves.append(c)
    return curves
