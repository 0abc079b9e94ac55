"""Latents <-> symbols <-> bytes: one latent coder per architecture, the exact integer parameter
path (exact.py) and the rANS glue (rans.py).

A latent coder is what the encoder and the decoder see of entropy coding: it turns a network's
gained latent ``y`` into the streams of a ``.lcz`` file and back, following the rules of the
file's format version (``codec.bitstream.features``). It is made once per loaded network, so
that whatever it derives from the weights (the integer hyper-synthesis) is derived once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch
    from torch import Tensor


class LatentCoder(Protocol):
    """Latents <-> streams for one architecture's network on one device."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None: ...

    def encode(
        self, y: Tensor, version: int, z: Tensor | None = None
    ) -> tuple[list[bytes], tuple[int, int], Tensor]:
        """The streams of the gained latent ``y``, the hyper-latent's shape, and the ``y_hat``
        the decoder will reconstruct from them (the encoder synthesises from it). ``z`` is the
        hyper-latent to send, derived from ``y`` when None (effort may choose another)."""
        ...

    def decode(self, streams: list[bytes], z_shape: tuple[int, int], version: int) -> Tensor:
        """The decoded gained latent ``y_hat``; ``CodecError`` on streams that do not fit."""
        ...
