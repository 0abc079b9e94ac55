"""Latents <-> symbols <-> bytes with CompressAI's rANS coder.

The encoder decodes its own hyper-latent before predicting the scales, so both sides derive the
probability tables from exactly the same ``z_hat``. ``hyper_parameters`` is the one place that
decides which table codes each latent: the bit-exactness of decoding rests on it.
"""

from __future__ import annotations

import torch
from torch import Tensor


def hyper_parameters(model, z_hat: Tensor) -> tuple[Tensor, Tensor]:
    """Table indexes and means for ``y`` from the decoded hyper-latent."""
    scales, means = model.h_s(z_hat).chunk(2, 1)
    indexes = model.gaussian_conditional.build_indexes(scales)
    return indexes, means


def encode_latents(model, y: Tensor) -> tuple[list[bytes], tuple[int, int], Tensor]:
    """Code the gained latent ``y``: returns the [z, y] streams, z's shape and the decoded ``y``."""
    z = model.h_a(y)
    z_strings = model.entropy_bottleneck.compress(z)
    z_shape = tuple(z.shape[-2:])
    z_hat = model.entropy_bottleneck.decompress(z_strings, z_shape)
    indexes, means = hyper_parameters(model, z_hat)
    y_strings = model.gaussian_conditional.compress(y, indexes, means=means)
    # What the decoder will reconstruct: the symbols CompressAI codes are round(y - means).
    y_hat = torch.round(y - means) + means
    return [z_strings[0], y_strings[0]], z_shape, y_hat


def decode_latents(model, streams: list[bytes], z_shape: tuple[int, int]) -> Tensor:
    """Inverse of ``encode_latents``: the decoded gained latent ``y_hat``."""
    z_hat = model.entropy_bottleneck.decompress([streams[0]], z_shape)
    indexes, means = hyper_parameters(model, z_hat)
    return model.gaussian_conditional.decompress([streams[1]], indexes, means=means)
