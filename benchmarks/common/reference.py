"""CompressAI's reference coding path and a stage-by-stage split, on lcodec's own network.

``ReferenceCoder`` does what ``compressai.utils.eval_model`` does around
``MeanScaleHyperprior.compress`` / ``decompress`` (centred zero padding to a multiple of 64 with
``compressai.ops.compute_padding``), with the gain applied after ``g_a`` and the inverse gain
before ``g_s``; the speed benchmark compares lcodec's public API against it. ``time_stages``
times the same operations one stage at a time so that a total can be attributed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from compressai.ops import compute_padding

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

    @property
    def num_bytes(self) -> int:
        """Bytes of the entropy-coded strings only (as CompressAI's eval_model counts bpp)."""
        return sum(len(s[0]) for s in self.strings)


class ReferenceCoder:
    """CompressAI's MeanScaleHyperprior.compress/decompress, with lcodec's gain at ``rate``."""

    def __init__(self, model: torch.nn.Module, rate: float):
        self.model = model
        self.device = model_device(model)
        self.rate = float(rate)
        r = torch.tensor([self.rate], device=self.device)
        with torch.inference_mode():
            self.gain, self.inv_gain = model.gains(r)

    def encode(self, img: np.ndarray) -> RefEncoded:
        """uint8 HxWx3 array -> strings, as eval_model's ``inference`` codes it."""
        m = self.model
        h, w = img.shape[:2]
        with torch.inference_mode():
            x = torch.from_numpy(img).to(self.device).permute(2, 0, 1)[None].float().div(255)
            pad, _ = compute_padding(h, w, min_div=MIN_DIV)
            x = F.pad(x, pad, mode="constant", value=0)
            y = m.g_a(x) * self.gain
            z = m.h_a(y)
            z_strings = m.entropy_bottleneck.compress(z)
            z_hat = m.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
            scales, means = m.h_s(z_hat).chunk(2, 1)
            indexes = m.gaussian_conditional.build_indexes(scales)
            y_strings = m.gaussian_conditional.compress(y, indexes, means=means)
        return RefEncoded([y_strings, z_strings], tuple(z.size()[-2:]), h, w)

    def decode(self, enc: RefEncoded) -> np.ndarray:
        """Strings -> uint8 HxWx3 array (centre crop, 8-bit rounding)."""
        m = self.model
        with torch.inference_mode():
            z_hat = m.entropy_bottleneck.decompress(enc.strings[1], enc.shape)
            scales, means = m.h_s(z_hat).chunk(2, 1)
            indexes = m.gaussian_conditional.build_indexes(scales)
            y_hat = m.gaussian_conditional.decompress(enc.strings[0], indexes, means=means)
            x_hat = m.g_s(y_hat * self.inv_gain).clamp_(0, 1)
            _, unpad = compute_padding(enc.height, enc.width, min_div=MIN_DIV)
            x_hat = F.pad(x_hat, unpad)
            out = x_hat[0].mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return out


def time_stages(coder: ReferenceCoder, img: np.ndarray) -> dict[str, float]:
    """Wall seconds of each stage of one encode and decode, synchronized between stages.

    analysis: gains, g_a and h_a; entropy_encode: coding z and y (z decoded again and h_s run to
    get y's scales, as the encoder must); entropy_decode: decoding z, h_s and y;
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
        z = m.h_a(y)
        t = mark("analysis", t)
        z_strings = m.entropy_bottleneck.compress(z)
        z_hat = m.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        scales, means = m.h_s(z_hat).chunk(2, 1)
        indexes = m.gaussian_conditional.build_indexes(scales)
        y_strings = m.gaussian_conditional.compress(y, indexes, means=means)
        t = mark("entropy_encode", t)
        z_hat = m.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        scales, means = m.h_s(z_hat).chunk(2, 1)
        indexes = m.gaussian_conditional.build_indexes(scales)
        y_hat = m.gaussian_conditional.decompress(y_strings, indexes, means=means)
        t = mark("entropy_decode", t)
        m.g_s(y_hat * inv_gain).clamp_(0, 1)
        mark("synthesis", t)
    return times
