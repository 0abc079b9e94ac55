"""CompressAI's reference coding path and a stage-by-stage split, on lcodec's own network.

``ReferenceCoder`` does what ``compressai.utils.eval_model`` does around
``MeanScaleHyperprior.compress`` / ``decompress`` (centred zero padding to a multiple of 64 with
``compressai.ops.compute_padding``), with the gain applied after ``g_a`` and the inverse gain
before ``g_s``; the speed benchmark compares lcodec's public API against it. For the context
model the latent is coded by CompressAI's own latent codecs (``ChannelGroupsLatentCodec`` over
``CheckerboardLatentCodec`` over ``GaussianConditionalLatentCodec``, as CompressAI composes
ELIC), built around lcodec's context networks. ``time_stages``
times the same operations one stage at a time so that a total can be attributed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from compressai.ops import compute_padding
from torch import nn

#: Total down-sampling of the hyperprior: CompressAI pads to a multiple of this.
MIN_DIV = 64


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA kernels, so wall time covers the work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@dataclass
class RefEncoded:
    """What CompressAI's compress returns, plus what the decoder needs to crop."""

    strings: list
    shape: tuple[int, int]
    height: int
    width: int
    y_shape: object = None  # what CompressAI's latent codec needs back to decode y

    @property
    def num_bytes(self) -> int:
        """Bytes of the entropy-coded strings only (as CompressAI's eval_model counts bpp)."""
        return sum(len(b) for b in _leaves(self.strings))


def _leaves(strings) -> list[bytes]:
    if isinstance(strings, bytes):
        return [strings]
    return [b for s in strings for b in _leaves(s)]


class _GroupParams(nn.Module):
    """lcodec's parameter aggregation for group ``k`` behind CompressAI's interface: the
    checkerboard codec hands it cat(spatial, channel context, hyper output)."""

    def __init__(self, model: nn.Module, k: int):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, k = self.model, self.k
        c2 = 2 * m.groups[k]
        spatial, rest = x[:, :c2], x[:, c2:]
        channel, hyper = (rest[:, :c2], rest[:, c2:]) if k else (None, rest)
        o, c, M = m.offsets[k], m.groups[k], m.M
        base = torch.cat([hyper[:, o : o + c], hyper[:, M + o : M + o + c]], 1)
        feats = [base, spatial] + ([channel] if k else [])
        return base + m.aggregation[k](torch.cat(feats, 1))


def context_latent_codec(model: nn.Module) -> nn.Module:
    """CompressAI's composition of channel groups and checkerboard halves, on lcodec's networks."""
    from compressai.latent_codecs import (
        ChannelGroupsLatentCodec,
        CheckerboardLatentCodec,
        GaussianConditionalLatentCodec,
    )

    groups = list(model.groups)
    return ChannelGroupsLatentCodec(
        groups=groups,
        channel_context={f"y{k}": model.channel_context[k - 1] for k in range(1, len(groups))},
        latent_codec={
            f"y{k}": CheckerboardLatentCodec(
                latent_codec={
                    "y": GaussianConditionalLatentCodec(
                        gaussian_conditional=model.gaussian_conditional, quantizer="ste"
                    )
                },
                entropy_parameters=_GroupParams(model, k),
                context_prediction=model.spatial_context[k],
            )
            for k in range(len(groups))
        },
    )


class ReferenceCoder:
    """CompressAI's MeanScaleHyperprior.compress/decompress, with lcodec's gain at ``rate``."""

    def __init__(self, model: torch.nn.Module, rate: float):
        self.model = model
        self.device = model_device(model)
        self.rate = float(rate)
        r = torch.tensor([self.rate], device=self.device)
        with torch.inference_mode():
            self.gain, self.inv_gain = model.gains(r)
        self.context = context_latent_codec(model).eval() if hasattr(model, "groups") else None

    def encode(self, img: np.ndarray) -> RefEncoded:
        """uint8 HxWx3 array -> strings, as eval_model's ``inference`` codes it."""
        m = self.model
        h, w = img.shape[:2]
        with torch.inference_mode():
            x = torch.from_numpy(img).to(self.device).permute(2, 0, 1)[None].float().div(255)
            pad, _ = compute_padding(h, w, min_div=MIN_DIV)
            x = F.pad(x, pad, mode="constant", value=0)
            return self.encode_latent(m.g_a(x) * self.gain, h, w)

    def encode_latent(self, y: torch.Tensor, h: int, w: int) -> RefEncoded:
        """The gained latent -> strings: CompressAI's entropy coding of z, then of y."""
        m = self.model
        with torch.inference_mode():
            z = m.h_a(y)
            z_strings = m.entropy_bottleneck.compress(z)
            z_hat = m.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
            y_shape = None
            if self.context is not None:
                out = self.context.compress(y, m.h_s(z_hat))
                y_strings, y_shape = out["strings"], out["shape"]
            else:
                scales, means = m.h_s(z_hat).chunk(2, 1)
                indexes = m.gaussian_conditional.build_indexes(scales)
                y_strings = m.gaussian_conditional.compress(y, indexes, means=means)
        return RefEncoded([y_strings, z_strings], tuple(z.size()[-2:]), h, w, y_shape)

    def decode_latent(self, enc: RefEncoded) -> torch.Tensor:
        """Strings -> the decoded gained latent."""
        m = self.model
        with torch.inference_mode():
            z_hat = m.entropy_bottleneck.decompress(enc.strings[1], enc.shape)
            if self.context is not None:
                side = m.h_s(z_hat)
                return self.context.decompress(enc.strings[0], enc.y_shape, side)["y_hat"]
            scales, means = m.h_s(z_hat).chunk(2, 1)
            indexes = m.gaussian_conditional.build_indexes(scales)
            return m.gaussian_conditional.decompress(enc.strings[0], indexes, means=means)

    def decode(self, enc: RefEncoded) -> np.ndarray:
        """Strings -> uint8 HxWx3 array (centre crop, 8-bit rounding)."""
        m = self.model
        y_hat = self.decode_latent(enc)
        with torch.inference_mode():
            x_hat = m.g_s(y_hat * self.inv_gain).clamp_(0, 1)
            _, unpad = compute_padding(enc.height, enc.width, min_div=MIN_DIV)
            x_hat = F.pad(x_hat, unpad)
            out = x_hat[0].mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return out


def time_stages(coder: ReferenceCoder, img: np.ndarray) -> dict[str, float]:
    """Wall seconds of each stage of one encode and decode, synchronized between stages.

    analysis: gains and g_a; entropy_encode: h_a, coding z and y (z decoded again and h_s run to
    get y's parameters, as the encoder must); entropy_decode: decoding z, h_s and y;
    synthesis: inverse gain and g_s.
    """
    m, dev = coder.model, coder.device
    h, w = img.shape[:2]
    times: dict[str, float] = {}

    def mark(name: str, t0: float) -> float:
        synchronize(dev)
        t1 = time.perf_counter()
        times[name] = t1 - t0
        return t1

    with torch.inference_mode():
        x = torch.from_numpy(img).to(dev).permute(2, 0, 1)[None].float().div(255)
        x = F.pad(x, compute_padding(h, w, min_div=MIN_DIV)[0])
        rate = torch.tensor([coder.rate], device=dev)
        synchronize(dev)
        t = time.perf_counter()
        gain, inv_gain = m.gains(rate)
        y = m.g_a(x) * gain
        t = mark("analysis", t)
        enc = coder.encode_latent(y, h, w)
        t = mark("entropy_encode", t)
        y_hat = coder.decode_latent(enc)
        t = mark("entropy_decode", t)
        m.g_s(y_hat * inv_gain).clamp_(0, 1)
        mark("synthesis", t)
    return times
