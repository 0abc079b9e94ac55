"""Latents <-> symbols <-> bytes with CompressAI's rANS coder.

The encoder decodes its own hyper-latent before predicting the entropy parameters, so both sides
derive the probability tables from exactly the same ``z_hat``. Which table codes each latent is
decided by a *hyper* function, ``z_hat -> (indexes, means)``: ``ExactHyperSynthesis`` (format
version 2, bit-exact on every device) or ``float_hyper`` (version 1 files).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

Hyper = Callable[[Tensor], "tuple[Tensor, Tensor]"]


def float_hyper(model) -> Hyper:
    """CompressAI's own float path: exact only on the machine that encoded."""

    def hyper(z_hat: Tensor) -> tuple[Tensor, Tensor]:
        scales, means = model.h_s(z_hat).chunk(2, 1)
        return model.gaussian_conditional.build_indexes(scales), means

    return hyper


def encode_latents(model, hyper: Hyper, y: Tensor) -> tuple[list[bytes], tuple[int, int], Tensor]:
    """Code the gained latent ``y``: returns the [z, y] streams, z's shape and the decoded ``y``."""
    z = model.h_a(y)
    z_strings = model.entropy_bottleneck.compress(z)
    z_shape = tuple(z.shape[-2:])
    z_hat = model.entropy_bottleneck.decompress(z_strings, z_shape)
    indexes, means = hyper(z_hat)
    y_strings = model.gaussian_conditional.compress(y, indexes, means=means)
    # What the decoder will reconstruct: the symbols CompressAI codes are round(y - means).
    y_hat = torch.round(y - means) + means
    return [z_strings[0], y_strings[0]], z_shape, y_hat


def decode_latents(model, hyper: Hyper, streams: list[bytes], z_shape: tuple[int, int]) -> Tensor:
    """Inverse of ``encode_latents``: the decoded gained latent ``y_hat``."""
    z_hat = model.entropy_bottleneck.decompress([streams[0]], z_shape)
    indexes, means = hyper(z_hat)
    return model.gaussian_conditional.decompress([streams[1]], indexes, means=means)
