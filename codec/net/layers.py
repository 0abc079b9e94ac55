"""Inference forms of the transforms' layers: the same functions, arranged for speed.

CompressAI's GDN re-derives its parameters on every call and makes four full-size passes over
memory; at the first and last layers (128 channels at half the image's resolution) that is as
slow as the convolution beside it. ``FastGDN`` caches the parameters and works in bands of
pixels that stay in cache; per pixel it computes the same function. Convolutions run
channels-last, the layout oneDNN and cuDNN are fastest in (about a third faster on CPU).

Under autograd (the encoder's latent search; the parameters stay frozen) ``FastGDN`` works
band by band as well, forward and backward.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from compressai.layers import GDN
from torch import Tensor, nn

#: Pixels per band of FastGDN on CPU: 2 MB of activations at 128 channels (measured best).
BAND_PIXELS = 4096


def _pixel_rows(t: Tensor) -> list[Tensor]:
    """(pixels, channels) views of a 4-D tensor: one for a channels-last tensor, one per image
    (a transposed view) for a contiguous one."""
    n, c, h, w = t.shape
    if not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        return [t.permute(0, 2, 3, 1).reshape(-1, c)]
    return [t[i].reshape(c, h * w).t() for i in range(n)]


def _dense(t: Tensor, like: Tensor) -> Tensor:
    """``t`` contiguous in ``like``'s layout, as ``_pixel_rows`` needs."""
    if not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last):
        return t.contiguous(memory_format=torch.channels_last)
    return t.contiguous()


def _gdn_bands(
    x: Tensor,
    out: Tensor,
    beta: Tensor,
    gamma_t: Tensor,
    inverse: bool,
    factor: Tensor | None = None,
) -> None:
    """GDN of ``x`` into ``out`` (``x`` itself to work in place) band by band; with ``factor``
    the per-pixel factor ``norm^±½`` is kept there too, for a backward pass."""
    factors = _pixel_rows(factor) if factor is not None else [None] * x.shape[0]
    for rows, rows_out, rows_f in zip(_pixel_rows(x), _pixel_rows(out), factors):
        for s in range(0, rows.shape[0], BAND_PIXELS):
            band = rows[s : s + BAND_PIXELS]
            keep = None if rows_f is None else rows_f[s : s + BAND_PIXELS]
            f = torch.addmm(beta, band * band, gamma_t, out=keep)
            if inverse:
                f.sqrt_()
            else:
                f.rsqrt_()
            torch.mul(band, f, out=rows_out[s : s + BAND_PIXELS])


class _BandedGDN(torch.autograd.Function):
    """GDN with frozen parameters and its gradient in the input, band by band, in the input's
    dtype (bf16 under autocast). It keeps the input and the per-pixel factor for the backward
    pass, where the plain form keeps three (the input, its square and the factor) and makes
    about ten passes over memory."""

    @staticmethod
    def forward(ctx, x: Tensor, gdn: FastGDN) -> Tensor:
        x = _dense(x, x)
        with torch.autocast(x.device.type, enabled=False):
            out, factor = torch.empty_like(x), torch.empty_like(x)
            beta, gamma_t = gdn.beta.to(x.dtype), gdn.gamma_t.to(x.dtype)
            _gdn_bands(x, out, beta, gamma_t, gdn.inverse, factor)
        ctx.save_for_backward(x, factor)
        ctx.gdn = gdn
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, factor = ctx.saved_tensors
        gdn = ctx.gdn
        grad = _dense(grad.to(x.dtype), x)
        gamma = gdn.gamma_t.t().to(x.dtype)
        grad_x = torch.empty_like(x)
        views = map(_pixel_rows, (x, factor, grad, grad_x))
        for rows, rows_f, rows_g, rows_gx in zip(*views):
            for s in range(0, rows.shape[0], BAND_PIXELS):
                band, f, g, gx = (t[s : s + BAND_PIXELS] for t in (rows, rows_f, rows_g, rows_gx))
                # out = x·f with f = norm^±½ and norm_c = beta_c + sum_k gamma[c, k]·x_k².
                grad_norm = g * band
                if gdn.inverse:
                    grad_norm.div_(f).mul_(0.5)
                else:
                    grad_norm.mul_(f).mul_(f).mul_(f).mul_(-0.5)
                torch.mul(g, f, out=gx)
                gx.addcmul_(torch.mm(grad_norm, gamma), band, value=2.0)
        return grad_x, None


class FastGDN(nn.Module):
    """GDN / inverse GDN with frozen parameters, computed band by band on the CPU.

    Under autograd (the encoder's latent optimisation) it is banded too on the CPU, and
    differentiable in its input.
    With ``inplace`` the result overwrites the input, as it may right after a convolution: a
    fresh 50 MB output costs more in page faults than the arithmetic done on it.
    """

    def __init__(self, gdn: GDN, inplace: bool = False):
        super().__init__()
        self.inverse = bool(gdn.inverse)
        self.inplace = inplace
        with torch.no_grad():
            beta = gdn.beta_reparam(gdn.beta)
            gamma = gdn.gamma_reparam(gdn.gamma)
        channels = beta.numel()
        self.register_buffer("beta", beta.detach().clone())
        self.register_buffer("gamma", gamma.detach().reshape(channels, channels, 1, 1).clone())
        # (C_in, C_out) so that a row of pixels times it is the 1x1 convolution.
        self.register_buffer("gamma_t", gamma.detach().reshape(channels, channels).t().contiguous())

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            if x.device.type == "cpu":
                return _BandedGDN.apply(x, self)
            norm = F.conv2d(x * x, self.gamma, self.beta)
            return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))
        if x.device.type != "cpu" or not x.is_contiguous(memory_format=torch.channels_last):
            norm = F.conv2d(x * x, self.gamma, self.beta)
            norm = norm.sqrt_() if self.inverse else norm.rsqrt_()
            return norm.mul_(x)
        return self._banded(x)

    def _banded(self, x: Tensor) -> Tensor:
        out = x if self.inplace else torch.empty_like(x)  # channels-last, like x
        _gdn_bands(x, out, self.beta, self.gamma_t, self.inverse)
        return out


def for_inference(transform: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A copy of a transform with FastGDN layers, its convolutions in channels-last layout.

    A GDN that directly follows a convolution in a ``Sequential`` works in place on its output.
    With ``dtype`` float16 or bfloat16 the copy computes in that precision (tensor cores on a GPU,
    AVX-512 BF16 or AMX on a CPU) and still takes and returns float32.
    """
    fast = copy.deepcopy(transform)
    for name, module in list(fast.named_modules()):
        if isinstance(module, GDN):
            parent_name, _, attr = name.rpartition(".")
            parent = fast.get_submodule(parent_name) if parent_name else fast
            inplace = False
            if isinstance(parent, nn.Sequential) and attr.isdigit() and int(attr) > 0:
                before = parent[int(attr) - 1]
                inplace = isinstance(before, (nn.Conv2d, nn.ConvTranspose2d))
            setattr(parent, attr, FastGDN(module, inplace=inplace))
    fast = fast.to(dtype=dtype, memory_format=torch.channels_last)
    return ChannelsLast(fast, dtype)


class ChannelsLast(nn.Module):
    """Runs the wrapped transform on a channels-last copy of its input, in ``dtype``."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.inner = inner
        self.dtype = dtype

    def forward(self, x: Tensor) -> Tensor:
        out = self.inner(x.to(dtype=self.dtype, memory_format=torch.channels_last))
        return out if out.dtype == torch.float32 else out.float()
