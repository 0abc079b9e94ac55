"""The decode pipeline, mirroring the encoder: ``.lcz`` bytes -> container -> the release that
wrote it -> latents (the architecture's latent coder) -> pixels (synthesis, crop) -> Picture.

Everything the header says is checked against the format and the model before any stream is
decoded, so a damaged or hostile file ends in one ``CodecError``.
"""

from __future__ import annotations

import math
import os

import torch

from . import bitstream, runtime
from .bitstream import Container
from .errors import CodecError
from .files import file_or_bytes, naming
from .image import Picture, decode_alpha, decoded_picture
from .limits import check_budget
from .net import architecture
from .net.refine import Refinement, split
from .net.tiling import synthesize
from .net.zoo import weights_for


def check_header(c: Container, model: torch.nn.Module, writes: tuple[int, ...]) -> None:
    """Refuse a header that disagrees with itself or with the model that is to decode it."""
    if c.version not in writes:
        raise CodecError(f"malformed header (format version {c.version} for model {c.model_id})")
    stride = model.stride
    if c.pad_bottom >= stride or c.pad_right >= stride:
        raise CodecError("malformed header (padding out of range)")
    ph, pw = c.height + c.pad_bottom, c.width + c.pad_right
    if ph % stride or pw % stride or c.z_shape != (ph // stride, pw // stride):
        raise CodecError("malformed header (sizes disagree)")
    if not (math.isfinite(c.rate) and 0 <= c.rate <= model.levels - 1):
        raise CodecError("malformed header (rate out of range)")


def decode(
    data: bytes | str | os.PathLike,
    device: str | torch.device | None = None,
    weights: str | None = None,
    *,
    precision: str | None = None,
    max_pixels: int | None = None,
) -> Picture:
    """A ``.lcz`` file (bytes or a path) as a ``Picture`` (``codec.decode`` documents it)."""
    data, name = file_or_bytes(data)
    with naming(name):
        c = bitstream.unpack(data)
        check_budget(c.width, c.height, max_pixels)  # before any model loads
    w = weights_for(c.model_id, c.weights_hash, weights)  # resolved once, handed to the cache
    lm = runtime.load_model(w, device, precision)
    model = lm.model
    check_header(c, model, architecture(w.manifest["architecture"]).writes)
    refinement = None
    if c.refinement is not None:
        refinement = Refinement.unpack(c.refinement, split(model.g_s)[1].in_channels)
    alpha = None if c.alpha is None else decode_alpha(c.alpha, c.width, c.height)
    with torch.inference_mode():
        try:
            y_hat = lm.coder.decode(c.streams, c.z_shape, c.version)
        except (RuntimeError, ValueError, IndexError, OverflowError) as e:
            raise CodecError(f"corrupt entropy-coded stream: {e}") from None
        rate = torch.tensor([c.rate], dtype=torch.float32, device=lm.device)
        _, inv_gain = model.gains(rate)
        rgb = synthesize(model, y_hat, inv_gain, c.height, c.width, refinement=refinement)
    del y_hat
    gray = c.layout in (bitstream.LAYOUT_GRAY, bitstream.LAYOUT_GRAYA)
    return decoded_picture(rgb, gray, alpha, c.icc_profile, c.source_mode, c.source_bits)
