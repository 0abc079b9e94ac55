"""The library: ``compress`` and ``decompress``, with the model cache and device choice.

Data path: image -> tensor (padded to a multiple of 64) -> gained latents -> symbols -> rANS
streams -> ``.lcz`` container, and back.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass

import numpy as np
import torch

from . import bitstream
from .bitstream import Container
from .effort import DEFAULT_EFFORT, effort_iterations
from .encoder import Analysis
from .entropy import Hyper, decode_latents, float_hyper
from .errors import CodecError
from .exact import ExactHyperSynthesis
from .files import file_or_bytes, naming
from .image import Picture, decode_alpha, decoded_picture, encode_alpha, read_image
from .layers import for_inference
from .limits import check_budget
from .ratecontrol import TargetResult, parse_target
from .tiling import synthesize
from .zoo import Weights, find_weights, load_network, weights_for

#: Total down-sampling of the hyperprior: images are padded to a multiple of this.
STRIDE = 64
DEFAULT_QUALITY = 50.0
#: Arithmetic of the analysis and synthesis transforms. The entropy path is float32 and exact
#: whatever is chosen, so files decode alike; the lower precisions move reconstructed pixels by
#: a fraction of a level (``python -m benchmarks.precision``): float16 for GPUs with tensor
#: cores, bfloat16 for CPUs with AVX-512 BF16 or AMX.
PRECISIONS = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEFAULT_PRECISION = "float32"


@dataclass
class LoadedModel:
    """A network on a device together with the weights it came from."""

    weights: Weights
    model: torch.nn.Module
    device: torch.device
    exact: ExactHyperSynthesis
    precision: str = DEFAULT_PRECISION

    def hyper(self, version: int) -> Hyper:
        """The entropy-parameter path a format version prescribes."""
        return self.exact if version >= 2 else float_hyper(self.model)


@dataclass
class Encoded:
    """A compressed file and the image the decoder will reconstruct from it."""

    data: bytes
    reconstruction: np.ndarray | None  # None when asked not to reconstruct
    container: Container
    target: TargetResult | None = None  # how a bpp, size or PSNR target was met, if one was set


_cache: dict[tuple[str, str], LoadedModel] = {}
_cache_lock = threading.Lock()


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` or ``"auto"`` picks CUDA when available; asking for a missing CUDA is an error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise CodecError(f"unknown device {device!r} (use auto, cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CodecError("CUDA was requested but no CUDA device is available")
    if dev.type not in ("cpu", "cuda"):
        raise CodecError(f"unsupported device {device!r} (use auto, cpu or cuda)")
    return dev


def resolve_precision(precision: str | None) -> str:
    """``None`` is the default precision; anything not in ``PRECISIONS`` is an error."""
    if precision is None:
        return DEFAULT_PRECISION
    if precision not in PRECISIONS:
        raise CodecError(f"unknown precision {precision!r} (use {' or '.join(PRECISIONS)})")
    return precision


def load_model(
    weights: str | Weights | None = None,
    device: str | torch.device | None = None,
    precision: str | None = None,
) -> LoadedModel:
    """Load (once per weights, device and precision) the network behind the codec.

    ``weights`` is a release name (``lcodec models`` lists them), a ``.safetensors`` path, or
    ``None`` for the default release.
    """
    w = weights if isinstance(weights, Weights) else find_weights(weights)
    dev = resolve_device(device)
    precision = resolve_precision(precision)
    key = (str(w.path.resolve()), str(dev), precision)
    with _cache_lock:
        if key not in _cache:
            model = load_network(w, dev)
            dtype = PRECISIONS[precision]
            model.g_a, model.g_s = for_inference(model.g_a, dtype), for_inference(model.g_s, dtype)
            model.h_a = for_inference(model.h_a)
            exact = ExactHyperSynthesis(model, dev)
            _cache[key] = LoadedModel(w, model, dev, exact, precision)
        return _cache[key]


def quality_to_rate(quality: float, levels: int) -> float:
    """Quality 0..100 maps linearly onto the rate ladder, which is log-spaced in lambda."""
    try:
        q = float(quality)
    except (TypeError, ValueError):
        raise CodecError(f"quality must be a number, got {quality!r}") from None
    if not math.isfinite(q) or not 0 <= q <= 100:
        raise CodecError(f"quality must be between 0 and 100, got {quality}")
    return q / 100 * (levels - 1)


def _rate_tensor(rate: float, device: torch.device) -> torch.Tensor:
    return torch.tensor([rate], dtype=torch.float32, device=device)


def _side_info(pic: Picture, version: int) -> dict:
    """The container fields that bring the image's layout, alpha and ICC profile back."""
    if version < 3:
        if pic.alpha is not None or pic.icc_profile is not None:
            raise CodecError(f"format version {version} cannot hold alpha or an ICC profile")
        return {}
    layout = {
        (False, False): bitstream.LAYOUT_RGB,
        (True, False): bitstream.LAYOUT_GRAY,
        (False, True): bitstream.LAYOUT_RGBA,
        (True, True): bitstream.LAYOUT_GRAYA,
    }[pic.is_gray, pic.alpha is not None]
    plain = (pic.source_mode, pic.source_bits) == (pic.mode, 8)  # the layout says it all
    return {
        "layout": layout,
        "alpha": None if pic.alpha is None else encode_alpha(pic.alpha),
        "icc_profile": pic.icc_profile,
        "source_mode": "" if plain else pic.source_mode,
        "source_bits": pic.source_bits,
    }


def encode(
    image,
    quality: float = DEFAULT_QUALITY,
    device=None,
    weights: str | None = None,
    *,
    reconstruct: bool = True,
    format_version: int = bitstream.VERSION,
    effort: int = DEFAULT_EFFORT,
    target_bpp: float | None = None,
    target_size: int | None = None,
    target_psnr: float | None = None,
    precision: str | None = None,
    model: str | None = None,
    max_pixels: int | None = None,
) -> Encoded:
    """Compress and also return the reconstruction the decoder will compute from the file.

    ``format_version=1`` writes the legacy float entropy path (for comparisons only).
    One of ``target_bpp``, ``target_size`` (bytes) or ``target_psnr`` (dB) replaces ``quality``
    by a search over it (codec/ratecontrol.py); ``.target`` says what was reached. ``effort``
    2..9 optimises the latents for this image: slower encoding, smaller files, same decoder
    (codec/effort.py). ``precision="float16"`` or ``"bfloat16"`` runs the transforms in
    half precision. ``model`` names the release to write with (``weights`` is the same, by
    position). An image of more pixels than ``max_pixels`` (default
    ``codec.limits.MAX_IMAGE_PIXELS``) is refused before it is decoded.
    """
    if format_version not in bitstream.READABLE_VERSIONS:
        raise CodecError(f"cannot write format version {format_version}")
    target = parse_target(target_bpp, target_size, target_psnr)
    iterations = effort_iterations(effort)
    pic = read_image(image, max_pixels)
    header = _side_info(pic, format_version)
    lm = load_model(_one_model(weights, model), device, precision)
    levels = lm.model.levels
    if target is None:
        quality_to_rate(quality, levels)  # fail on a bad quality before any work
    analysis = Analysis(
        lm, pic.rgb(), STRIDE, format_version, lambda q: quality_to_rate(q, levels), header
    )
    recon, result = None, None
    if target is None:
        trial = analysis.trial(quality, iterations)
    else:
        trial, recon, result = analysis.search(target, iterations)
    if reconstruct and recon is None:
        recon = analysis.reconstruction(trial)
    if recon is not None:  # in the image's own layout, as decompress returns it
        recon = decoded_picture(recon, pic.is_gray, pic.alpha).pixels
    return Encoded(data=trial.data, reconstruction=recon, container=trial.container, target=result)


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
) -> bytes:
    """Compress an image (path, PIL image or HxWx3 uint8 array) into ``.lcz`` bytes.

    Targets, effort, precision, model and the pixel budget work as in ``encode``.
    """
    return encode(
        image,
        quality,
        device,
        _one_model(weights, model),
        reconstruct=False,
        effort=effort,
        target_bpp=target_bpp,
        target_size=target_size,
        target_psnr=target_psnr,
        precision=precision,
        max_pixels=max_pixels,
    ).data


def _one_model(weights: str | None, model: str | None) -> str | None:
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
    data, name = file_or_bytes(data)
    with naming(name):
        c = bitstream.unpack(data)
        check_budget(c.width, c.height, max_pixels)  # before any model loads
    lm = load_model(weights_for(c.model_id, c.weights_hash, weights), device, precision)
    model = lm.model
    if c.pad_bottom >= STRIDE or c.pad_right >= STRIDE:
        raise CodecError("malformed header (padding out of range)")
    ph, pw = c.height + c.pad_bottom, c.width + c.pad_right
    if ph % STRIDE or pw % STRIDE or c.z_shape != (ph // STRIDE, pw // STRIDE):
        raise CodecError("malformed header (sizes disagree)")
    if not (math.isfinite(c.rate) and 0 <= c.rate <= model.levels - 1):
        raise CodecError("malformed header (rate out of range)")
    alpha = None if c.alpha is None else decode_alpha(c.alpha, c.width, c.height)
    with torch.inference_mode():
        try:
            hyper, banded = lm.hyper(c.version), c.version >= 3
            y_hat = decode_latents(model, hyper, c.streams, c.z_shape, banded)
        except (RuntimeError, ValueError, IndexError, OverflowError) as e:
            raise CodecError(f"corrupt entropy-coded stream: {e}") from None
        _, inv_gain = model.gains(_rate_tensor(c.rate, lm.device))
        rgb = synthesize(model, y_hat, inv_gain, c.height, c.width)
    del y_hat
    gray = c.layout in (bitstream.LAYOUT_GRAY, bitstream.LAYOUT_GRAYA)
    return decoded_picture(rgb, gray, alpha, c.icc_profile, c.source_mode, c.source_bits)


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
