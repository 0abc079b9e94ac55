"""Exact hyper-synthesis: the entropy parameters in integer arithmetic (format version 2).

The rANS decoder only stays in step with the encoder if both pick the same probability table
for every latent. A float hyper-synthesis does not guarantee that across devices, thread counts
or math libraries: one scale that lands on the other side of a table threshold garbles the rest
of the image. Here, as in Ballé et al. 2019 ("Integer Networks for Data Compression with
Latent-Variable Models"), every weight, bias and activation is an integer on a fixed-point grid:

- input: ``z`` symbols plus the rounded per-channel medians, at ``2**ACT_BITS`` per unit;
- weights: rounded to ``WEIGHT_BITS`` signed bits per layer, biases to the accumulator's grid;
- each layer's sum of products is evaluated in float64, where integers below 2**53 are exact
  whatever the order of summation, algorithm or device; the bounds below keep every partial sum
  under 2**50 (under 2**52 for the 3x3 convolution, computed with Winograd's F(2x2, 3x3) in
  integer transforms: 16 multiplications per 2x2 output where the direct form needs 36);
- LeakyReLU's slope is 41/4096 and the rescale to the next layer's grid is a floor after a
  multiplication by a power of two: both exact.

Scale indexes come from integer comparisons with the scale table on the same grid, and the means
are exact dyadic numbers, so decoded latents are bit-identical everywhere. Only the synthesis
transform (pixels) may differ between devices, by rounding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACT_BITS = 8  # activations on a 1/256 grid
ACT_LIMIT = 2.0**20  # |activation| <= 4096.0: keeps every accumulator below 2**50
#: Hyper-latents of context each side of a piece of the hyper-synthesis (a band's rows, a
#: piece's columns): its two stride-2 5x5 transposed convolutions and a 3x3 convolution reach
#: less than 2 hyper-latents away.
HYPER_HALO = 2
#: Hyper-latent columns per piece: the integer convolutions' buffers grow with the piece, so a
#: wide image costs no more memory per band than a narrow one.
HYPER_COLUMNS = 16
WEIGHT_BITS = 15  # max |integer weight| <= 2**15
SLOPE_NUM, SLOPE_SHIFT = 41, 12  # LeakyReLU slope 41/4096 ~ 0.01


def _layer_spec(layer: nn.Module) -> dict:
    """Integer weights and bias for one conv or transposed conv, from its float parameters."""
    w = layer.weight.detach().to("cpu", torch.float64)
    b = layer.bias.detach().to("cpu", torch.float64)
    shift = WEIGHT_BITS - math.ceil(math.log2(w.abs().max().item() + 1e-30))
    transposed = isinstance(layer, nn.ConvTranspose2d)
    weight = torch.round(w * 2.0**shift)
    if transposed:  # (Cin, Cout, k, k); out[s*i - p + k] += in[i] * w[k]
        if layer.stride[0] != 2 or layer.kernel_size[0] + layer.output_padding[0] != (
            2 * layer.padding[0] + 2
        ):
            raise ValueError("exact path: transposed convolutions must double the size")
        taps = weight.permute(2, 3, 0, 1)
    else:  # (Cout, Cin, k, k)
        if layer.stride[0] != 1 or layer.kernel_size[0] != 2 * layer.padding[0] + 1:
            raise ValueError("exact path: convolutions must keep the size")
        taps = weight.permute(2, 3, 1, 0)
    spec = {
        "transposed": transposed,
        "weight": weight,
        "taps": taps.contiguous(),  # (k, k, Cin, Cout): one matrix per kernel tap
        "bias": torch.round(b * 2.0 ** (shift + ACT_BITS)),
        "shift": shift,
        "stride": layer.stride,
        "padding": layer.padding,
        "output_padding": getattr(layer, "output_padding", (0, 0)),
    }
    if not transposed and layer.kernel_size[0] == 3 and winograd_is_exact(taps.shape[2]):
        spec["winograd"] = winograd_filter(spec["taps"])
    return spec


def winograd_is_exact(cin: int) -> bool:
    """Whether F(2x2, 3x3) keeps every partial sum an integer below 2**53 for ``cin`` inputs.

    Transformed inputs reach 4x the largest activation, transformed filters 9x the largest
    weight; a product sums ``cin`` of them and the output transform adds 9 such sums.
    """
    return 9 * cin * (4 * ACT_LIMIT) * (9 * 2.0**WEIGHT_BITS) < 2.0**53


class ExactHyperSynthesis:
    """Integer-grid version of a MeanScaleHyperprior's ``h_s`` plus CompressAI's index rule."""

    def __init__(self, model: nn.Module, device: torch.device | str = "cpu"):
        layers = [m for m in model.h_s if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        acts = [m for m in model.h_s if isinstance(m, nn.LeakyReLU)]
        if len(layers) != 3 or len(acts) != 2:
            raise ValueError("expected h_s = conv, LeakyReLU, conv, LeakyReLU, conv")
        self.device = torch.device(device)
        self.layers = [_layer_spec(m) for m in layers]
        for spec in self.layers:
            for key in ("taps", "bias", "winograd"):
                if key in spec:
                    spec[key] = spec[key].to(self.device)
        eb = model.entropy_bottleneck
        medians = eb.quantiles.detach()[:, 0, 1].to("cpu", torch.float64)
        self.medians = medians.to(self.device)  # as CompressAI's coder adds them
        self.median_int = torch.round(medians * 2.0**ACT_BITS).to(self.device)
        table = model.gaussian_conditional.scale_table.detach().to("cpu", torch.float64)
        # scale <= t on the grid  <=>  integer scale <= floor(t * 2**ACT_BITS)
        self.thresholds = torch.floor(table[:-1] * 2.0**ACT_BITS).to(self.device)
        self.M = model.M

    def _conv(self, x: Tensor, spec: dict, split: int = 1) -> Tensor:
        """Integer accumulation over channels-last ``x`` (N, H, W, C): one matrix product per
        kernel tap. ``split`` sums input-channel groups separately (tests use it)."""
        groups = [slice(None)] if split == 1 else torch.arange(x.shape[-1]).chunk(split)
        parts = []
        for idx in groups:
            idx = idx if isinstance(idx, slice) else idx.to(x.device)
            if spec["transposed"]:
                parts.append(_transposed_taps(x[..., idx], spec["taps"][:, :, idx], spec))
            elif "winograd" in spec:
                parts.append(_winograd_taps(x[..., idx], spec["winograd"][:, :, idx]))
            else:
                parts.append(_conv_taps(x[..., idx], spec["taps"][:, :, idx], spec["padding"][0]))
        acc = parts[-1]
        for p in reversed(parts[:-1]):  # another order than plain summation
            acc = acc + p
        return acc + spec["bias"]

    @staticmethod
    def _rescale(acc: Tensor, shift: int, leaky: bool) -> Tensor:
        if leaky:
            acc = torch.where(acc < 0, acc * SLOPE_NUM, acc * 2.0**SLOPE_SHIFT)
            shift += SLOPE_SHIFT
        out = torch.floor(acc * 2.0**-shift + 0.5)
        return out.clamp_(-ACT_LIMIT, ACT_LIMIT)

    def integer_params(self, z_symbols: Tensor, split: int = 1) -> Tensor:
        """Integer output (scales then means, ``2**ACT_BITS`` per unit) from ``z`` symbols,
        computed in pieces of ``HYPER_COLUMNS`` columns with ``HYPER_HALO`` real columns of
        context on each side. The arithmetic is exact, so the pieces join into the whole
        result bit for bit, while the float64 buffers stay those of one piece."""
        cols = z_symbols.shape[-1]
        if cols <= HYPER_COLUMNS + 2 * HYPER_HALO:
            return self._integer_params(z_symbols, split)
        pieces = []
        for c0 in range(0, cols, HYPER_COLUMNS):
            c1 = min(cols, c0 + HYPER_COLUMNS)
            a0, a1 = max(0, c0 - HYPER_HALO), min(cols, c1 + HYPER_HALO)
            out = self._integer_params(z_symbols[..., a0:a1], split)
            up = out.shape[-1] // (a1 - a0)
            pieces.append(out[..., (c0 - a0) * up : (c1 - a0) * up])
        return torch.cat(pieces, -1)

    def _integer_params(self, z_symbols: Tensor, split: int) -> Tensor:
        x = z_symbols.to(self.device, torch.float64) * 2.0**ACT_BITS
        x = (x + self.median_int[None, :, None, None]).permute(0, 2, 3, 1)
        for i, spec in enumerate(self.layers):
            x = self._rescale(self._conv(x, spec, split), spec["shift"], leaky=i < 2)
        return x.permute(0, 3, 1, 2).contiguous()

    def symbols_from_z_hat(self, z_hat: Tensor) -> Tensor:
        """Recover the integer ``z`` symbols from CompressAI's dequantized ``z_hat``."""
        med = self.medians.to(z_hat.device)[None, :, None, None]
        return torch.round(z_hat.to(torch.float64) - med)

    def __call__(self, z_hat: Tensor, split: int = 1) -> tuple[Tensor, Tensor]:
        """Table indexes (int32) and means (float32, exact dyadic values) for ``y``."""
        params = self.integer_params(self.symbols_from_z_hat(z_hat), split)
        scales, means = params[:, : self.M], params[:, self.M :]
        # CompressAI's rule: index = number of table thresholds strictly below the scale.
        indexes = torch.bucketize(scales, self.thresholds).to(torch.int32)
        means = (means * 2.0**-ACT_BITS).to(torch.float32)
        return indexes.to(z_hat.device), means.to(z_hat.device)


def _conv_taps(x: Tensor, taps: Tensor, pad: int) -> Tensor:
    """Stride-1 'same' convolution of (N, H, W, Cin) as a sum of per-tap matrix products."""
    n, h, w, cin = x.shape
    k = taps.shape[0]
    xp = F.pad(x, (0, 0, pad, pad, pad, pad))
    acc = x.new_zeros(n * h * w, taps.shape[-1])
    for i in range(k):
        for j in range(k):
            acc.addmm_(xp[:, i : i + h, j : j + w].reshape(-1, cin), taps[i, j])
    return acc.reshape(n, h, w, -1)


def _transposed_taps(x: Tensor, taps: Tensor, spec: dict) -> Tensor:
    """Stride-2 transposed convolution of (N, H, W, Cin) that doubles the size, per output phase.

    Output row ``2q + a`` gathers input rows ``q + d`` through kernel row ``a + p - 2d``: each
    of the four phases is a small stride-1 convolution over the input padded by one.
    """
    n, h, w, cin = x.shape
    k, p = taps.shape[0], spec["padding"][0]
    xp = F.pad(x, (0, 0, 1, 1, 1, 1))
    out = x.new_empty(n, h, 2, w, 2, taps.shape[-1])
    for a in (0, 1):
        for b in (0, 1):
            acc = x.new_zeros(n * h * w, taps.shape[-1])
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    ki, kj = a + p - 2 * di, b + p - 2 * dj
                    if 0 <= ki < k and 0 <= kj < k:
                        rows = xp[:, 1 + di : 1 + di + h, 1 + dj : 1 + dj + w]
                        acc.addmm_(rows.reshape(-1, cin), taps[ki, kj])
            out[:, :, a, :, b] = acc.reshape(n, h, w, -1)
    return out.reshape(n, 2 * h, 2 * w, -1)


# Winograd F(2x2, 3x3) (Lavin & Gray 2016) with the filter transform doubled, so that every
# transform is an integer matrix and the result is exactly 4x the direct convolution.
_G2 = ((2, 0, 0), (1, 1, 1), (1, -1, 1), (0, 0, 2))


def winograd_filter(taps: Tensor) -> Tensor:
    """(3, 3, Cin, Cout) integer taps to the (4, 4, Cin, Cout) transformed filter, 4x scaled."""
    g = torch.tensor(_G2, dtype=taps.dtype, device=taps.device)
    return torch.einsum("ai,ijco,bj->abco", g, taps, g).contiguous()


def _winograd_taps(x: Tensor, u: Tensor) -> Tensor:
    """Stride-1 'same' 3x3 convolution of (N, H, W, Cin) with a ``winograd_filter`` ``u``.

    The transforms work on whole even/odd row and column planes rather than on 4x4 tiles, so
    each is a handful of large element-wise operations.
    """
    n, h, w, cin = x.shape
    th, tw = (h + 1) // 2, (w + 1) // 2
    xp = F.pad(x, (0, 0, 1, 1 + w % 2, 1, 1 + h % 2))  # (N, 2 th + 2, 2 tw + 2, Cin)
    # B^T = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)) over tile rows 2i..2i+3
    even, odd = xp[:, 0::2], xp[:, 1::2]
    e0, e1, o0, o1 = even[:, :th], even[:, 1 : th + 1], odd[:, :th], odd[:, 1 : th + 1]
    rows = (e0 - e1, o0 + e1, e1 - o0, o0 - o1)
    v = x.new_empty(4, 4, n, th, tw, cin)
    for r, plane in enumerate(rows):
        even, odd = plane[:, :, 0::2], plane[:, :, 1::2]
        e0, e1 = even[:, :, :tw], even[:, :, 1 : tw + 1]
        o0, o1 = odd[:, :, :tw], odd[:, :, 1 : tw + 1]
        torch.sub(e0, e1, out=v[r, 0])
        torch.add(o0, e1, out=v[r, 1])
        torch.sub(e1, o0, out=v[r, 2])
        torch.sub(o0, o1, out=v[r, 3])
    v = v.reshape(16, n * th * tw, cin)
    u = u.reshape(16, cin, -1)
    m = x.new_empty(16, n * th * tw, u.shape[-1])
    for i in range(16):
        torch.mm(v[i], u[i], out=m[i])
    m = m.reshape(4, 4, n, th, tw, -1)
    # A^T = ((1, 1, 1, 0), (0, 1, -1, -1)) on both sides, then the exact division by 4.
    s = m[0] + m[1]
    s += m[2]
    t = m[1] - m[2]
    t -= m[3]
    y = x.new_empty(n, th, 2, tw, 2, m.shape[-1])
    for a, plane in enumerate((s, t)):
        out = y[:, :, a, :, 0]
        torch.add(plane[0], plane[1], out=out)
        out += plane[2]
        out = y[:, :, a, :, 1]
        torch.sub(plane[1], plane[2], out=out)
        out -= plane[3]
    y *= 0.25
    return y.reshape(n, 2 * th, 2 * tw, -1)[:, :h, :w]
