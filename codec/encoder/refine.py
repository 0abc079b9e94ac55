"""The encoder's side of the synthesis refinement (codec/net/refine.py): the least-squares fit.

The last layer's output is ``sum over input channels c of (1 + s[c, o]) * u[c, o] + b[o] +
db[o]``, where ``u[c, o]`` is channel ``c``'s feature map convolved with its weights for colour
``o``. That is linear in the scales ``s`` and the offsets ``db``, so the squared error to the
image is a quadratic whose minimum one linear solve finds: no iterations, no learning rate, the
same answer on every run. The normal equations are summed tile by tile, so memory stays bounded
whatever the image size. The fit minimises squared error; whether a refinement is worth its
bytes is judged on the real file by the loss the effort search minimises (``Analysis.refined``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..net.refine import COLOURS, FORM_CHANNEL, FORM_CHANNEL_RGB, Refinement, split
from ..net.tiling import synthesis_tiles

#: Core side of a tile of the fit in pixels: a tile holds a feature map per input channel for
#: one colour at a time, so it is smaller than synthesis tiles.
TILE = 384
#: Ridge on the normal equations, relative to their mean diagonal: keeps a channel that is
#: silent on this image from taking an arbitrary scale.
RIDGE = 1e-6


@torch.no_grad()
def normal_equations(
    model, y_hat: Tensor, inv_gain: Tensor, pixels: np.ndarray
) -> tuple[Tensor, Tensor]:
    """Per colour ``o``, the Gram matrix of ``[u[:, o], 1]`` over the image's pixels and its
    product with the residual ``x[o] - x_hat[o]``: (3, C + 1, C + 1) and (3, C + 1), float64."""
    body, last = split(model.g_s)
    weight, bias = last.weight.float(), last.bias.float()
    channels = last.in_channels
    height, width = pixels.shape[:2]
    gram = torch.zeros(COLOURS, channels + 1, channels + 1, dtype=torch.float64)
    rhs = torch.zeros(COLOURS, channels + 1, dtype=torch.float64)
    for t in synthesis_tiles(y_hat.shape[-2:], height, width, TILE):
        feat = body(y_hat[..., t.rows, t.cols].to(inv_gain.device) * inv_gain).float()
        target = torch.from_numpy(np.array(pixels[t.region]))  # a copy
        target = target.to(feat.device).permute(2, 0, 1).float().div_(255)
        for o in range(COLOURS):
            u = F.conv_transpose2d(
                feat,
                weight[:, o : o + 1],
                None,
                last.stride,
                last.padding,
                last.output_padding,
                channels,
                last.dilation,
            )
            u = t.core(u[0]).reshape(channels, -1)
            residual = target[o].reshape(-1) - (u.sum(0) + bias[o])
            a = torch.cat([u, torch.ones_like(u[:1])])
            gram[o] += (a @ a.T).double().cpu()
            rhs[o] += (a @ residual).double().cpu()
            del u, a, residual
        del feat
    return gram, rhs


def solve(gram: Tensor, rhs: Tensor) -> list[Refinement]:
    """The least-squares refinement of each form, quantized as the file holds it."""
    channels = gram.shape[-1] - 1

    def ridged(m: Tensor) -> Tensor:
        d = m.diagonal().mean().clamp_min(1e-12)
        return m + RIDGE * d * torch.eye(m.shape[0], dtype=m.dtype)

    # Per channel and colour: three independent systems.
    per_rgb = torch.stack([torch.linalg.solve(ridged(gram[o]), rhs[o]) for o in range(COLOURS)])
    scales_rgb = per_rgb[:, :channels].T.contiguous()  # (channels, colours)
    # Per channel: the scales shared by the colours, an offset per colour.
    n = channels + COLOURS
    m = torch.zeros(n, n, dtype=torch.float64)
    v = torch.zeros(n, dtype=torch.float64)
    m[:channels, :channels] = gram[:, :channels, :channels].sum(0)
    v[:channels] = rhs[:, :channels].sum(0)
    for o in range(COLOURS):
        m[:channels, channels + o] = gram[o, :channels, channels]
        m[channels + o, :channels] = gram[o, channels, :channels]
        m[channels + o, channels + o] = gram[o, channels, channels]
        v[channels + o] = rhs[o, channels]
    shared = torch.linalg.solve(ridged(m), v)
    return [
        Refinement.quantize(FORM_CHANNEL, shared[:channels].numpy(), shared[channels:].numpy()),
        Refinement.quantize(
            FORM_CHANNEL_RGB, scales_rgb.numpy().ravel(), per_rgb[:, channels].numpy()
        ),
    ]


def fit(model, y_hat: Tensor, inv_gain: Tensor, pixels: np.ndarray) -> list[Refinement]:
    """The refinements of each form that bring the synthesis of ``y_hat`` closest to
    ``pixels`` (HxWx3 uint8) in squared error; none where the equations cannot be solved (a
    synthesis that overflowed in half precision)."""
    gram, rhs = normal_equations(model, y_hat, inv_gain, pixels)
    if not (torch.isfinite(gram).all() and torch.isfinite(rhs).all()):
        return []
    try:
        return solve(gram, rhs)
    except torch.linalg.LinAlgError:
        return []
