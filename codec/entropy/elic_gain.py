"""Latents <-> symbols <-> bytes for the context model (format version 4).

Every network whose output picks a probability table runs on the integer grid of
``codec/exact.py``: the hyper-synthesis, and per channel group the channel context, the
checkerboard spatial context and the parameter aggregation. Their inputs are decoded latents,
which are exact dyadic numbers (symbols plus means on the 1/256 grid), so the encoder and every
decoder compute the same tables on any device, thread count or math library.

Order of the symbols in a band's one rANS stream: for each channel group, its anchors (the
checkerboard half with (row + column) even), then the rest; inside a pass, channel by channel,
positions in raster order. A band is coded on its own: context networks see zeros beyond its
rows, as they see zeros beyond the image's edges; the hyper-latent comes in with a halo as in
version 3.
"""

from __future__ import annotations

import numpy as np
import torch
from compressai.ans import RansDecoder, RansEncoder
from torch import Tensor, nn

from ..errors import CodecError
from ..net.elic_gain import checkerboard
from .exact import ACT_BITS, ACT_LIMIT, ExactHyperSynthesis, _layer_spec
from .msh_gain import HYPER_HALO, UP, band_count, bands, safe_stream
from .rans import symbol_coder

MAX_BAND_SYMBOLS = 1 << 22


def _specs(layers: list[nn.Module], device: torch.device) -> list[dict]:
    out = []
    for layer in layers:
        conv = layer
        if hasattr(layer, "masked_weight"):  # the checkerboard convolution: masked taps
            conv = nn.Conv2d(layer.in_channels, layer.out_channels, 5, padding=2)
            conv.weight.data = layer.masked_weight().detach().clone()
            conv.bias.data = layer.bias.detach().clone()
        spec = _layer_spec(conv)
        for key in ("taps", "bias", "winograd"):
            if key in spec:
                spec[key] = spec[key].to(device)
        out.append(spec)
    return out


def _convs(seq: nn.Module) -> list[nn.Module]:
    return [m for m in seq.modules() if isinstance(m, nn.Conv2d)]


class ExactContext:
    """The context model's parameter path on the integer grid, for one loaded network."""

    def __init__(self, model: nn.Module, device: torch.device | str = "cpu", split: int = 1):
        self.device = torch.device(device)
        self.split = split  # sums input channels in groups: tests perturb the order with it
        self.hyper = ExactHyperSynthesis(model, self.device)
        self.M, self.groups, self.offsets = model.M, model.groups, model.offsets
        self.channel = [None] + [_specs(_convs(s), self.device) for s in model.channel_context]
        self.spatial = [_specs([s], self.device)[0] for s in model.spatial_context]
        self.aggregation = [_specs(_convs(s), self.device) for s in model.aggregation]
        self.thresholds = self.hyper.thresholds

    def _layer(self, x: Tensor, spec: dict, relu: bool) -> Tensor:
        acc = self.hyper._conv(x, spec, self.split)
        if relu:
            acc = acc.clamp_(min=0)
        return self.hyper._rescale(acc, spec["shift"], leaky=False)

    def _net(self, x: Tensor, specs: list[dict]) -> Tensor:
        for i, spec in enumerate(specs):
            x = self._layer(x, spec, relu=i < len(specs) - 1)
        return x

    def group_params(
        self, k: int, base: Tensor, before: Tensor | None, anchors: Tensor | None
    ) -> Tensor:
        """Integer scales then means (N, H, W, 2c) of group ``k``: ``base`` the hyper output's
        share, ``before`` the decoded earlier groups and ``anchors`` this group's decoded
        anchors (zeros elsewhere; ``None`` for the anchor pass), both on the grid."""
        c = self.groups[k]
        if anchors is None:
            spatial = base.new_zeros(*base.shape[:-1], 2 * c)
        else:
            spatial = self._layer(anchors, self.spatial[k], relu=False)
        feats = [base, spatial]
        if k:
            feats.append(self._net(before, self.channel[k]))
        return base + self._net(torch.cat(feats, -1), self.aggregation[k])

    def indexes_means(self, params: Tensor) -> tuple[Tensor, Tensor]:
        scales, means = params.chunk(2, -1)
        indexes = torch.bucketize(scales.contiguous(), self.thresholds).to(torch.int32)
        return indexes, means

    def band(self, z_hat: Tensor, r0: int, r1: int) -> Tensor:
        """Integer hyper output of latent rows ``r0:r1``, channels last."""
        z0 = max(0, r0 // UP - HYPER_HALO)
        z1 = min(z_hat.shape[-2], -(-r1 // UP) + HYPER_HALO)
        symbols = self.hyper.symbols_from_z_hat(z_hat[..., z0:z1, :])
        params = self.hyper.integer_params(symbols, self.split)
        off = z0 * UP
        return params[0, :, r0 - off : r1 - off].permute(1, 2, 0)[None]


def _code_band(ctx: ExactContext, coder, base: Tensor, step) -> Tensor:
    """Walk one band's passes in coding order. ``step(indexes, means, mask_k)`` codes (or
    decodes) the symbols of one pass and returns their decoded values, (N, H, W, c) with
    zeros outside the pass; returns the decoded band on the grid, channels last."""
    n, h, w, _ = base.shape
    anchor = checkerboard(h, w, base.device)[0, 0][None, :, :, None]
    decoded, out = [], []
    M = ctx.M
    for k, (o, c) in enumerate(zip(ctx.offsets, ctx.groups)):
        share = torch.cat([base[..., o : o + c], base[..., M + o : M + o + c]], -1)
        before = torch.cat(decoded, -1) if k else None
        first = ctx.group_params(k, share, before, None)
        y_first = step(k, *ctx.indexes_means(first), anchor)
        second = ctx.group_params(k, share, before, y_first.clamp(-ACT_LIMIT, ACT_LIMIT))
        y_second = step(k, *ctx.indexes_means(second), ~anchor)
        out.append(y_first + y_second)
        # Inputs of later passes stay within the grid's bounds (the output does not need to).
        decoded.append(out[-1].clamp(-ACT_LIMIT, ACT_LIMIT))
    return torch.cat(out, -1)


def _select(t: Tensor, mask: Tensor) -> Tensor:
    """Values of the pass, channel by channel, positions in raster order."""
    return t[0].permute(2, 0, 1)[:, mask[0, :, :, 0]].reshape(-1)


def _place(values: Tensor, mask: Tensor, c: int) -> Tensor:
    h, w = mask.shape[1:3]
    out = values.new_zeros(c, h, w)
    out[:, mask[0, :, :, 0]] = values.reshape(c, -1)
    return out.permute(1, 2, 0)[None]


def encode_latents(
    ctx: ExactContext, model, y: Tensor
) -> tuple[list[bytes], tuple[int, int], Tensor]:
    """[z, y bands...] streams, z's shape and the decoded ``y_hat`` for a gained latent."""
    z = model.h_a(y)
    eb = model.entropy_bottleneck
    z_strings = eb.compress(z)
    z_shape = tuple(z.shape[-2:])
    medians = eb.quantiles.detach()[:, 0, 1].view(1, -1, 1, 1).to(z.dtype)
    z_hat = (torch.round(z - medians) + medians).contiguous()
    rows, cols = y.shape[-2:]
    coder = symbol_coder(model.gaussian_conditional)
    streams = [z_strings[0]]
    y_hat = torch.empty_like(y)
    for r0, r1 in bands(rows, band_count(rows, cols, y.shape[1])):
        yb = y[..., r0:r1, :].to(ctx.device, torch.float64).permute(0, 2, 3, 1)
        symbols, indexes = [], []

        def step(k, idx, means_int, mask, yb=yb, symbols=symbols, indexes=indexes):
            o, c = ctx.offsets[k], ctx.groups[k]
            means = means_int * 2.0**-ACT_BITS
            q = torch.round(yb[..., o : o + c] - means)
            symbols.append(_select(q, mask))
            indexes.append(_select(idx, mask))
            return torch.where(mask, q * 2.0**ACT_BITS + means_int, 0.0)

        grid = _code_band(ctx, coder, ctx.band(z_hat, r0, r1), step)
        sym = torch.cat(symbols).to(torch.int32).tolist()
        idx = torch.cat(indexes).tolist()
        streams.append(
            RansEncoder().encode_with_indexes(sym, idx, coder.cdfs, coder.lengths, coder.offsets)
        )
        y_hat[..., r0:r1, :] = (grid * 2.0**-ACT_BITS).permute(0, 3, 1, 2).to(y.dtype)
    return streams, z_shape, y_hat


def decode_latents(
    ctx: ExactContext, model, streams: list[bytes], z_shape: tuple[int, int]
) -> Tensor:
    """Inverse of ``encode_latents``: the decoded gained latent ``y_hat``."""
    eb, gc = model.entropy_bottleneck, model.gaussian_conditional
    zh, zw = z_shape
    rows, cols = zh * UP, zw * UP
    spans = bands(rows, len(streams) - 1)
    per_band = model.M * (spans[0][1] - spans[0][0]) * cols
    if per_band > MAX_BAND_SYMBOLS:
        raise CodecError("malformed file (latent bands too large)")
    z_stream = safe_stream(streams[0], eb._quantized_cdf.shape[0] * zh * zw)
    z_hat = eb.decompress([z_stream], z_shape).to(ctx.device)
    coder = symbol_coder(gc)
    y_hat = torch.empty((1, model.M, rows, cols), dtype=torch.float32)
    for (r0, r1), stream in zip(spans, streams[1:]):
        decoder = RansDecoder()
        decoder.set_stream(safe_stream(stream, model.M * (r1 - r0) * cols))

        def step(k, idx, means_int, mask, decoder=decoder):
            c = ctx.groups[k]
            values = decoder.decode_stream(
                _select(idx, mask).tolist(), coder.cdfs, coder.lengths, coder.offsets
            )
            q = torch.from_numpy(np.asarray(values, dtype=np.float64)).to(ctx.device)
            q = _place(q, mask, c)
            return torch.where(mask, q * 2.0**ACT_BITS + means_int, 0.0)

        grid = _code_band(ctx, coder, ctx.band(z_hat, r0, r1), step)
        y_hat[..., r0:r1, :] = (grid * 2.0**-ACT_BITS).permute(0, 3, 1, 2).float().cpu()
    return y_hat


class ElicGainCoder:
    """The ``LatentCoder`` of the context model: format version 4 only."""

    def __init__(self, model: nn.Module, device: torch.device):
        self.model = model
        self.exact = ExactContext(model, device)

    def encode(self, y: Tensor, version: int) -> tuple[list[bytes], tuple[int, int], Tensor]:
        return encode_latents(self.exact, self.model, y)

    def decode(self, streams: list[bytes], z_shape: tuple[int, int], version: int) -> Tensor:
        return decode_latents(self.exact, self.model, streams, z_shape)
