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
import torch.nn.functional as F
from compressai.ans import RansDecoder, RansEncoder
from torch import Tensor, nn

from ..errors import CodecError
from ..net.elic_gain import checkerboard
from .exact import ACT_BITS, ACT_LIMIT, HYPER_HALO, ExactHyperSynthesis, _layer_spec
from .msh_gain import (
    MAX_BAND_SYMBOLS,
    UP,
    band_count,
    bands,
    safe_stream,
)
from .rans import symbol_coder


def _specs(layers: list[nn.Module], device: torch.device) -> list[dict]:
    out = []
    for layer in layers:
        conv = layer
        if hasattr(layer, "masked_weight"):  # the checkerboard convolution: masked taps
            conv = nn.Conv2d(layer.in_channels, layer.out_channels, 5, padding=2)
            conv.weight.data = layer.masked_weight().detach().clone()
            conv.bias.data = layer.bias.detach().clone()
        spec = _layer_spec(conv)
        nonzero = spec["taps"].flatten(2).abs().sum(-1) > 0
        spec["nonzero"] = [tuple(ij) for ij in nonzero.nonzero().tolist()]
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

    def _rows(self, x: Tensor, specs: list[dict]) -> Tensor:
        """A stack of 1x1 convolutions on rows of pixels (P, C): only the pass's positions."""
        for i, spec in enumerate(specs):
            w = spec["taps"][0, 0]
            parts = [x[:, idx] @ w[idx] for idx in self._chunks(x.shape[-1])]
            acc = parts[-1]
            for part in reversed(parts[:-1]):
                acc = acc + part
            acc = acc + spec["bias"]
            if i < len(specs) - 1:
                acc = acc.clamp_(min=0)
            x = self.hyper._rescale(acc, spec["shift"], leaky=False)
        return x

    def _chunks(self, channels: int) -> list:
        if self.split == 1:
            return [slice(None)]
        return [i.to(self.device) for i in torch.arange(channels).chunk(self.split)]

    def _spatial(self, k: int, anchors: Tensor, mask: Tensor) -> Tensor:
        """The checkerboard convolution at the positions of ``mask`` only, over the taps that
        are not masked: (P, 2c) rows from a (1, H, W, c) grid of decoded anchors."""
        spec = self.spatial[k]
        h, w = mask.shape
        xp = F.pad(anchors, (0, 0, 2, 2, 2, 2))[0]
        acc = None
        for i, j in spec["nonzero"]:
            rows = xp[i : i + h, j : j + w][mask]
            for idx in self._chunks(rows.shape[-1]):
                term = rows[:, idx] @ spec["taps"][i, j][idx]
                acc = term if acc is None else acc + term
        return self.hyper._rescale(acc + spec["bias"], spec["shift"], leaky=False)

    def pass_params(
        self, k: int, share: Tensor, channel: Tensor | None, spatial: Tensor | None
    ) -> Tensor:
        """Integer scales then means (P, 2c) of group ``k`` at one pass's positions: ``share``
        the hyper output's, corrected from the channel context and the spatial context
        (``None``: the anchor pass, which has none), all rows of the same positions."""
        if spatial is None:
            spatial = share.new_zeros(share.shape)
        feats = [share, spatial] + ([channel] if channel is not None else [])
        return share + self._rows(torch.cat(feats, -1), self.aggregation[k])

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


def _code_band(ctx: ExactContext, base: Tensor, step) -> Tensor:
    """Walk one band's passes in coding order. ``step(k, indexes, means, mask)`` codes (or
    decodes) the symbols of one pass, given as rows (P, c) of the positions where ``mask`` is
    set, and returns their decoded values on the grid; returns the decoded band on the grid,
    (1, H, W, M)."""
    _, h, w, _ = base.shape
    anchor = checkerboard(h, w, base.device)[0, 0]
    decoded, out = [], []
    M = ctx.M
    for k, (o, c) in enumerate(zip(ctx.offsets, ctx.groups)):
        share = torch.cat([base[0, ..., o : o + c], base[0, ..., M + o : M + o + c]], -1)
        channel = ctx._net(torch.cat(decoded, -1), ctx.channel[k])[0] if k else None
        grid = base.new_zeros(1, h, w, c)
        for mask in (anchor, ~anchor):
            spatial = None if mask is anchor else ctx._spatial(k, grid, mask)
            params = ctx.pass_params(
                k, share[mask], None if channel is None else channel[mask], spatial
            )
            grid[0][mask] = step(k, *ctx.indexes_means(params), mask)
            # Context inputs stay within the grid's bounds (the output does not need to).
            if mask is anchor:
                grid = grid.clamp(-ACT_LIMIT, ACT_LIMIT)
        out.append(grid)
        decoded.append(grid.clamp(-ACT_LIMIT, ACT_LIMIT))
    return torch.cat(out, -1)


def encode_latents(
    ctx: ExactContext, model, y: Tensor, z: Tensor | None = None
) -> tuple[list[bytes], tuple[int, int], Tensor]:
    """[z, y bands...] streams, z's shape and the decoded ``y_hat`` for a gained latent;
    ``z`` is the hyper-latent to send (the effort search optimises it), else ``h_a(y)``."""
    if z is None:
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
            q = torch.round(yb[0][mask][:, o : o + c] - means_int * 2.0**-ACT_BITS)
            symbols.append(q.t().reshape(-1))  # channel by channel, positions in raster order
            indexes.append(idx.t().reshape(-1))
            return q * 2.0**ACT_BITS + means_int

        grid = _code_band(ctx, ctx.band(z_hat, r0, r1), step)
        sym = torch.cat(symbols).to(torch.int32).tolist()
        idx = torch.cat(indexes).tolist()
        streams.append(
            RansEncoder().encode_with_indexes(sym, idx, coder.cdfs, coder.lengths, coder.offsets)
        )
        y_hat[..., r0:r1, :] = (grid * 2.0**-ACT_BITS).permute(0, 3, 1, 2).to(y.dtype)
    return streams, z_shape, y_hat


def decode_latents(
    ctx: ExactContext,
    model,
    streams: list[bytes],
    z_shape: tuple[int, int],
    trace: list | None = None,
) -> Tensor:
    """Inverse of ``encode_latents``: the decoded gained latent ``y_hat``. ``trace`` collects
    the table indexes of every pass, in coding order (the determinism benchmark compares
    them)."""
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
            if trace is not None:
                trace.append(idx.t().reshape(-1))
            values = decoder.decode_stream(
                idx.t().reshape(-1).tolist(), coder.cdfs, coder.lengths, coder.offsets
            )
            q = torch.from_numpy(np.asarray(values, dtype=np.float64)).to(ctx.device)
            return q.reshape(idx.shape[1], -1).t() * 2.0**ACT_BITS + means_int

        grid = _code_band(ctx, ctx.band(z_hat, r0, r1), step)
        y_hat[..., r0:r1, :] = (grid * 2.0**-ACT_BITS).permute(0, 3, 1, 2).float().cpu()
    return y_hat


class ElicGainCoder:
    """The ``LatentCoder`` of the context model: format version 4 only."""

    def __init__(self, model: nn.Module, device: torch.device):
        self.model = model
        self.exact = ExactContext(model, device)

    def encode(
        self, y: Tensor, version: int, z: Tensor | None = None
    ) -> tuple[list[bytes], tuple[int, int], Tensor]:
        return encode_latents(self.exact, self.model, y, z)

    def decode(self, streams: list[bytes], z_shape: tuple[int, int], version: int) -> Tensor:
        return decode_latents(self.exact, self.model, streams, z_shape)
