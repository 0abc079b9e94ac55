"""Analysis and synthesis tile by tile, so that memory stays bounded whatever the image size.

Both transforms are convolutional: a latent depends only on pixels within the analysis
transform's receptive field (four stride-2 5x5 layers: 61 px), and a pixel only on latents a few
positions away. Each tile therefore runs with ``HALO`` pixels of real context on every side and
keeps only its core; the result is the whole-image transform up to float rounding, without
seams. Tiles are aligned to the 64-pixel padding grid, and an image that fits in one tile runs
in a single call, exactly as without tiling.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .refine import Refinement, refined_synthesis

#: Core side of a tile in pixels (a multiple of 64): the memory/overhead trade-off.
TILE = 768
#: Context on each side of a tile's core, in pixels (a multiple of 16).
HALO = 64
#: Pixels per latent: the analysis transform has four stride-2 layers.
DOWN = 16


def spans(length: int, tile: int, align: int) -> list[tuple[int, int]]:
    """Split ``range(length)`` into near-equal cores of at most ``tile``, aligned to ``align``."""
    count = max(1, math.ceil(length / tile))
    size = math.ceil(length / count / align) * align
    return [(s, min(length, s + size)) for s in range(0, length, size)]


def to_uint8(x: Tensor) -> np.ndarray:
    """A (1, 3, H, W) tensor in [0, 1] as HxWx3 uint8; NaN (from a damaged file) becomes 0."""
    x = torch.nan_to_num(x[0], nan=0.0).clamp_(0, 1).mul_(255).round_().to(torch.uint8)
    return x.permute(1, 2, 0).cpu().numpy()


def _writable(a: np.ndarray) -> np.ndarray:
    """``a`` itself when torch may wrap it, else a contiguous, writable copy."""
    return a if a.flags.writeable and a.flags.c_contiguous else np.array(a)


def analyse(
    model, pixels: np.ndarray, padded: tuple[int, int], device: torch.device, tile: int = 0
) -> Tensor:
    """``model.g_a`` of ``pixels`` (HxWx3 uint8) edge-padded to ``padded`` (height, width).

    Returns the (1, M, height / 16, width / 16) latent; the padded image is never built.
    """
    tile = tile or TILE
    height, width = pixels.shape[:2]
    ph, pw = padded
    y = None
    for r0, r1 in spans(ph, tile, 64):
        for c0, c1 in spans(pw, tile, 64):
            a0, a1 = max(0, r0 - HALO), min(ph, r1 + HALO)
            b0, b1 = max(0, c0 - HALO), min(pw, c1 + HALO)
            if a1 <= height and b1 <= width:
                patch = pixels[a0:a1, b0:b1]
            else:
                rows = np.minimum(np.arange(a0, a1), height - 1)  # edge replication
                cols = np.minimum(np.arange(b0, b1), width - 1)
                patch = pixels[rows[:, None], cols[None, :]]
            with torch.no_grad():
                x = (
                    torch.from_numpy(_writable(patch))
                    .to(device)
                    .permute(2, 0, 1)[None]
                    .float()
                    .div_(255)
                )
                out = model.g_a(x)
                del x
            if y is None:
                y = torch.empty((1, out.shape[1], ph // DOWN, pw // DOWN), device=device)
            y[..., r0 // DOWN : r1 // DOWN, c0 // DOWN : c1 // DOWN] = out[
                ...,
                (r0 - a0) // DOWN : (r1 - a0) // DOWN,
                (c0 - b0) // DOWN : (c1 - b0) // DOWN,
            ]
            del out
    return y


@dataclass(frozen=True)
class SynthesisTile:
    """One tile of a synthesis: the latent window it reads (``rows``, ``cols``: its core with
    ``HALO`` of context) and the part of the image its core makes (``region``: rows and
    columns), which starts at ``offset`` (y, x) in the window's output."""

    rows: slice
    cols: slice
    region: tuple[slice, slice]
    offset: tuple[int, int]

    def core(self, x: Tensor) -> Tensor:
        """The window's output ``x`` (..., H, W) cut to the region."""
        (dy, dx), (r, c) = self.offset, self.region
        return x[..., dy : dy + r.stop - r.start, dx : dx + c.stop - c.start]


def synthesis_tiles(
    latent: tuple[int, int], height: int, width: int, tile: int = 0
) -> Iterator[SynthesisTile]:
    """The tiles that cover a ``height x width`` image made from a latent of ``latent`` (rows,
    columns), cores of about ``tile`` pixels; tiles all padding are skipped."""
    tile = (tile or TILE) // DOWN
    halo = HALO // DOWN
    lh, lw = latent
    for r0, r1 in spans(lh, tile, 64 // DOWN):
        for c0, c1 in spans(lw, tile, 64 // DOWN):
            top, left = r0 * DOWN, c0 * DOWN
            bottom, right = min(r1 * DOWN, height), min(c1 * DOWN, width)
            if top >= bottom or left >= right:
                continue  # the tile is all padding
            a0, b0 = max(0, r0 - halo), max(0, c0 - halo)
            yield SynthesisTile(
                slice(a0, min(lh, r1 + halo)),
                slice(b0, min(lw, c1 + halo)),
                (slice(top, bottom), slice(left, right)),
                ((r0 - a0) * DOWN, (c0 - b0) * DOWN),
            )


def synthesize(
    model,
    y_hat: Tensor,
    inv_gain: Tensor,
    height: int,
    width: int,
    tile: int = 0,
    refinement: Refinement | None = None,
) -> np.ndarray:
    """``model.g_s(y_hat * inv_gain)`` cropped to ``height x width``, as HxWx3 uint8, its last
    layer refined by the file's ``refinement`` if it has one (codec/net/refine.py).

    ``y_hat`` may sit on another device than the model (the entropy decoder leaves it on the
    CPU); each tile moves on its own to the device of ``inv_gain``, which comes from the
    model's gains, so a large latent never moves whole.
    """
    g_s = model.g_s if refinement is None else refined_synthesis(model.g_s, refinement)
    out = np.empty((height, width, 3), np.uint8)
    for t in synthesis_tiles(y_hat.shape[-2:], height, width, tile):
        with torch.no_grad():
            x = g_s(y_hat[..., t.rows, t.cols].to(inv_gain.device) * inv_gain)
            out[t.region] = to_uint8(t.core(x))
            del x
    return out
