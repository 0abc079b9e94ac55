"""The library: ``compress`` and ``decompress``, with the model cache and device choice.

Data path: image -> tensor (padded to a multiple of 64) -> gained latents -> symbols -> rANS
streams -> ``.lcz`` container, and back.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import bitstream
from .bitstream import Container
from .entropy import Hyper, decode_latents, encode_latents, float_hyper
from .errors import CodecError
from .exact import ExactHyperSynthesis
from .image import to_rgb_array
from .zoo import Weights, find_weights, load_network

#: Total down-sampling of the hyperprior: images are padded to a multiple of this.
STRIDE = 64
DEFAULT_QUALITY = 50.0


@dataclass
class LoadedModel:
    """A network on a device together with the weights it came from."""

    weights: Weights
    model: torch.nn.Module
    device: torch.device
    exact: ExactHyperSynthesis

    def hyper(self, version: int) -> Hyper:
        """The entropy-parameter path a format version prescribes."""
        return self.exact if version >= 2 else float_hyper(self.model)


@dataclass
class Encoded:
    """A compressed file and the image the decoder will reconstruct from it."""

    data: bytes
    reconstruction: np.ndarray | None  # None when asked not to reconstruct
    container: Container


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


def load_model(weights: str | None = None, device: str | torch.device | None = None) -> LoadedModel:
    """Load (once per weights and device) the network behind the codec."""
    w = find_weights(weights)
    dev = resolve_device(device)
    key = (str(w.path.resolve()), str(dev))
    with _cache_lock:
        if key not in _cache:
            model = load_network(w, dev)
            exact = ExactHyperSynthesis(model, dev)
            _cache[key] = LoadedModel(weights=w, model=model, device=dev, exact=exact)
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


def _to_uint8(x_hat: torch.Tensor, height: int, width: int) -> np.ndarray:
    x = x_hat[0, :, :height, :width].clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.permute(1, 2, 0).cpu().numpy()


def encode(
    image,
    quality: float = DEFAULT_QUALITY,
    device=None,
    weights: str | None = None,
    *,
    reconstruct: bool = True,
    format_version: int = bitstream.VERSION,
) -> Encoded:
    """Compress and also return the reconstruction the decoder will compute from the file.

    ``format_version=1`` writes the legacy float entropy path (for comparisons only).
    """
    if format_version not in bitstream.READABLE_VERSIONS:
        raise CodecError(f"cannot write format version {format_version}")
    arr = to_rgb_array(image)
    height, width = arr.shape[:2]
    bitstream._check_dims(width, height)
    lm = load_model(weights, device)
    model = lm.model
    rate = quality_to_rate(quality, model.levels)
    pad_bottom, pad_right = (-height) % STRIDE, (-width) % STRIDE
    with torch.inference_mode():
        x = torch.from_numpy(arr).to(lm.device).permute(2, 0, 1)[None].float().div_(255)
        x = F.pad(x, (0, pad_right, 0, pad_bottom), mode="replicate")
        gain, inv_gain = model.gains(_rate_tensor(rate, lm.device))
        y = model.g_a(x) * gain
        streams, z_shape, y_hat = encode_latents(model, lm.hyper(format_version), y)
        recon = None
        if reconstruct:
            recon = _to_uint8(model.g_s(y_hat * inv_gain), height, width)
    c = Container(
        width=width,
        height=height,
        quality=float(quality),
        rate=rate,
        model_id=lm.weights.model_id,
        weights_hash=lm.weights.short_hash,
        z_shape=z_shape,
        streams=streams,
        pad_bottom=pad_bottom,
        pad_right=pad_right,
        version=format_version,
    )
    return Encoded(data=bitstream.pack(c), reconstruction=recon, container=c)


def compress(
    image, quality: float = DEFAULT_QUALITY, device=None, weights: str | None = None
) -> bytes:
    """Compress an image (path, PIL image or HxWx3 uint8 array) into ``.lcz`` bytes."""
    return encode(image, quality, device, weights, reconstruct=False).data


def _weights_for(c: Container, weights: str | None) -> str:
    """The weights a container names (or those given), refusing any whose hash differs."""
    try:
        w = find_weights(weights or c.model_id)
    except CodecError:
        raise CodecError(f"file needs model {c.model_id!r}, which is not installed") from None
    if w.short_hash != c.weights_hash:
        raise CodecError(
            f"file was made with other weights for {c.model_id!r} "
            f"({c.weights_hash.hex()}, installed {w.short_hash.hex()})"
        )
    return str(w.path)


def decompress(data: bytes, device=None, weights: str | None = None) -> np.ndarray:
    """Decode ``.lcz`` bytes into an HxWx3 uint8 RGB array."""
    c = bitstream.unpack(data)
    lm = load_model(_weights_for(c, weights), device)
    model = lm.model
    if c.pad_bottom >= STRIDE or c.pad_right >= STRIDE:
        raise CodecError("malformed header (padding out of range)")
    ph, pw = c.height + c.pad_bottom, c.width + c.pad_right
    if ph % STRIDE or pw % STRIDE or c.z_shape != (ph // STRIDE, pw // STRIDE):
        raise CodecError("malformed header (sizes disagree)")
    if len(c.streams) != 2:
        raise CodecError(f"expected 2 streams, found {len(c.streams)}")
    if not (math.isfinite(c.rate) and 0 <= c.rate <= model.levels - 1):
        raise CodecError("malformed header (rate out of range)")
    with torch.inference_mode():
        try:
            y_hat = decode_latents(model, lm.hyper(c.version), c.streams, c.z_shape)
        except (RuntimeError, ValueError, IndexError) as e:
            raise CodecError(f"corrupt entropy-coded stream: {e}") from None
        _, inv_gain = model.gains(_rate_tensor(c.rate, lm.device))
        x_hat = model.g_s(y_hat * inv_gain)
        return _to_uint8(x_hat, c.height, c.width)


def info(data: bytes) -> dict:
    """What a ``.lcz`` file holds, without decoding it."""
    c = bitstream.unpack(data)
    return {
        "format_version": c.version,
        "model": c.model_id,
        "weights_hash": c.weights_hash.hex(),
        "width": c.width,
        "height": c.height,
        "layout": bitstream.LAYOUTS[c.layout],
        "quality": round(c.quality, 4),
        "rate": round(c.rate, 6),
        "padding": {
            "bottom": c.pad_bottom,
            "right": c.pad_right,
            "mode": bitstream.PAD_MODES[c.pad_mode],
        },
        "hyper_latent_shape": list(c.z_shape),
        "bytes": len(data),
        "header_bytes": c.header_size,
        "stream_bytes": {"z": len(c.streams[0]), "y": len(c.streams[1])}
        if len(c.streams) == 2
        else [len(s) for s in c.streams],
        "crc_bytes": 4,
        "bpp": 8 * len(data) / (c.width * c.height),
    }
