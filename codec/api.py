"""The library's face: ``encode``, ``compress``, ``decode``, ``decompress`` and ``info``.

Each call checks its arguments and hands over: an image goes through codec/image.py, the model
cache (codec/runtime.py) and the encoder (codec/encoder/); a file through codec/decoder.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from . import bitstream, decoder
from .bitstream import Container, info
from .encoder.analysis import encode_picture, encode_picture_budgets
from .encoder.effort import DEFAULT_EFFORT, effort_iterations
from .encoder.ratecontrol import TargetResult, parse_target
from .errors import CodecError
from .image import Picture, read_image
from .metrics import TUNES
from .net.zoo import TUNED

__all__ = [
    "DEFAULT_QUALITY",
    "Encoded",
    "compress",
    "decode",
    "decompress",
    "encode",
    "encode_efforts",
    "info",
]

DEFAULT_QUALITY = 50.0


@dataclass
class Encoded:
    """A compressed file and the image the decoder will reconstruct from it."""

    data: bytes
    reconstruction: np.ndarray | None  # None when asked not to reconstruct
    container: Container
    target: TargetResult | None = None  # how a bpp, size or PSNR target was met, if one was set
    search_seconds: float = 0.0  # how long the effort search ran (0 at effort 1)
    search_cpu_seconds: float = 0.0  # its process CPU time, all threads


def encode(
    image,
    quality: float = DEFAULT_QUALITY,
    device=None,
    weights: str | None = None,
    *,
    reconstruct: bool = True,
    format_version: int | None = None,
    effort: int = DEFAULT_EFFORT,
    target_bpp: float | None = None,
    target_size: int | None = None,
    target_psnr: float | None = None,
    precision: str | None = None,
    model: str | None = None,
    max_pixels: int | None = None,
    tune: str | None = None,
) -> Encoded:
    """Compress and also return the reconstruction the decoder will compute from the file.

    ``format_version`` defaults to the newest the model writes; ``1`` writes the legacy float
    entropy path (for comparisons only). One of ``target_bpp``, ``target_size`` (bytes) or
    ``target_psnr`` (dB) replaces ``quality`` by a search over it
    (codec/encoder/ratecontrol.py); ``.target`` says what was reached. ``effort`` 2..9
    optimises the latents for this image: slower encoding, smaller files, same decoder
    (codec/encoder/effort.py), then fits the synthesis' last layer to the image and sends it
    in the file where that pays for its bytes (codec/encoder/refine.py).
    ``precision="float16"`` or ``"bfloat16"`` runs the transforms in half precision.
    ``model`` names the release to write with (``weights`` is the same, by position).
    ``tune="psnr"`` or ``"ms-ssim"`` writes for that metric: with the release tuned for it
    unless ``model`` names one, and at effort 2..9 a search that minimises its loss (without
    ``tune``, the release's search loss, ``codec.metrics.searched_by``). An image of more
    pixels than ``max_pixels`` (default ``codec.limits.MAX_IMAGE_PIXELS``) is refused before
    it is decoded.
    """
    model, distortion = tuned(tune, one_model(weights, model))
    if format_version is not None and format_version not in bitstream.READABLE_VERSIONS:
        raise CodecError(f"cannot write format version {format_version}")
    target = parse_target(target_bpp, target_size, target_psnr)
    iterations = effort_iterations(effort)
    pic = read_image(image, max_pixels)
    trial, recon, result = encode_picture(
        pic,
        model,
        device,
        precision,
        quality,
        format_version,
        target,
        iterations,
        reconstruct,
        distortion,
    )
    return Encoded(
        trial.data,
        recon,
        trial.container,
        result,
        trial.search_seconds,
        trial.search_cpu_seconds,
    )


def encode_efforts(
    image,
    quality: float = DEFAULT_QUALITY,
    efforts=tuple(range(1, 10)),
    device=None,
    weights: str | None = None,
    *,
    precision: str | None = None,
    max_pixels: int | None = None,
    tune: str | None = None,
) -> dict[int, Encoded]:
    """``encode(image, quality, effort=N)`` for each N of ``efforts``, at the cost of the
    highest alone: the search's schedule depends on the step count only, so every lower level's
    latents are the best found on the way (codec/encoder/effort.py), each then given the
    synthesis refinement ``encode`` would give them. Images too large to be
    refined whole run one search per level. For comparing levels; ``.search_seconds`` is how
    long the search had run when each level's file was settled. ``tune`` as in ``encode``.
    """
    weights, distortion = tuned(tune, weights)
    levels = sorted({int(effort) for effort in efforts})
    budgets = [effort_iterations(e) for e in levels]
    pic = read_image(image, max_pixels)
    coded = encode_picture_budgets(pic, weights, device, precision, quality, budgets, distortion)
    return {
        e: Encoded(t.data, recon, t.container, None, t.search_seconds, t.search_cpu_seconds)
        for e, (t, recon) in zip(levels, coded)
    }


def compress(
    image,
    quality: float = DEFAULT_QUALITY,
    device=None,
    weights: str | None = None,
    *,
    effort: int = DEFAULT_EFFORT,
    target_bpp: float | None = None,
    target_size: int | None = None,
    target_psnr: float | None = None,
    precision: str | None = None,
    model: str | None = None,
    max_pixels: int | None = None,
    tune: str | None = None,
) -> bytes:
    """Compress an image into ``.lcz`` bytes: a path, a file's bytes, a PIL image, or a uint8
    array (HxW gray, HxWx2 gray and alpha, HxWx3 RGB, HxWx4 RGBA).

    Targets, effort, precision, model, tune and the pixel budget work as in ``encode``.
    """
    return encode(
        image,
        quality,
        device,
        one_model(weights, model),
        reconstruct=False,
        effort=effort,
        target_bpp=target_bpp,
        target_size=target_size,
        target_psnr=target_psnr,
        precision=precision,
        max_pixels=max_pixels,
        tune=tune,
    ).data


def tuned(tune: str | None, model: str | None) -> tuple[str | None, str | None]:
    """The release to write with and the distortion effort searches by, for ``tune``: the
    release tuned for the metric unless ``model`` names one. Without ``tune``: ``model`` as
    given and ``None`` (effort searches by the release's search distortion)."""
    if tune is None:
        return model, None
    if tune not in TUNES:
        raise CodecError(f"unknown tune {tune!r}: choose one of {', '.join(TUNES)}")
    return (TUNED[tune] if model is None else model), TUNES[tune]


def one_model(weights: str | None, model: str | None) -> str | None:
    """The release asked for: ``model``, or ``weights``, its older name; both must agree."""
    if weights is not None and model is not None and str(weights) != str(model):
        raise CodecError(f"weights {weights!r} and model {model!r} disagree: give one")
    return model if model is not None else weights


def decode(
    data: bytes | str | os.PathLike,
    device=None,
    weights: str | None = None,
    *,
    precision: str | None = None,
    max_pixels: int | None = None,
) -> Picture:
    """Decode a ``.lcz`` file (bytes or a path) into a ``Picture``: ``.pixels`` in the image's
    own layout (HxW gray, HxWx3 RGB, or with alpha HxWx2 / HxWx4), ``.mode``, ``.alpha``,
    ``.icc_profile``. A file whose image is over ``max_pixels`` is refused from its header."""
    return decoder.decode(data, device, weights, precision=precision, max_pixels=max_pixels)


#: What ``decompress(mode=...)`` converts to; ``None`` keeps the image's own layout.
MODES = (None, "RGB", "RGBA", "L", "LA")


def decompress(
    data: bytes | str | os.PathLike,
    device=None,
    weights: str | None = None,
    mode: str | None = None,
    *,
    precision: str | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Decode a ``.lcz`` file (bytes or a path) into a uint8 array in the image's own layout:
    HxWx3 for RGB (every file of format versions 1 and 2), HxW for gray, HxWx4 / HxWx2 with
    alpha.

    ``mode="RGB"`` (or ``"RGBA"``, ``"L"``, ``"LA"``) converts to that layout instead;
    ``max_pixels`` works as in ``decode``.
    """
    if mode not in MODES:
        raise CodecError(f"mode must be one of RGB, RGBA, L, LA, got {mode!r}")
    pic = decode(data, device, weights, precision=precision, max_pixels=max_pixels)
    if mode is None or mode == pic.mode:
        return pic.pixels
    if mode == "RGB":
        return pic.rgb()
    return np.asarray(pic.to_pil().convert(mode))
