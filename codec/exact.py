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
  under 2**50;
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
WEIGHT_BITS = 15  # max |integer weight| <= 2**15
SLOPE_NUM, SLOPE_SHIFT = 41, 12  # LeakyReLU slope 41/4096 ~ 0.01


def _layer_spec(layer: nn.Module) -> dict:
    """Integer weights and bias for one conv or transposed conv, from its float parameters."""
    w = layer.weight.detach().to("cpu", torch.float64)
    b = layer.bias.detach().to("cpu", torch.float64)
    shift = WEIGHT_BITS - math.ceil(math.log2(w.abs().max().item() + 1e-30))
    return {
        "transposed": isinstance(layer, nn.ConvTranspose2d),
        "weight": torch.round(w * 2.0**shift),
        "bias": torch.round(b * 2.0 ** (shift + ACT_BITS)),
        "shift": shift,
        "stride": layer.stride,
        "padding": layer.padding,
        "output_padding": getattr(layer, "output_padding", (0, 0)),
    }


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
            spec["weight"] = spec["weight"].to(self.device)
            spec["bias"] = spec["bias"].to(self.device)
        eb = model.entropy_bottleneck
        medians = eb.quantiles.detach()[:, 0, 1].to("cpu", torch.float64)
        self.medians = medians.to(self.device)  # as CompressAI's coder adds them
        self.median_int = torch.round(medians * 2.0**ACT_BITS).to(self.device)
        table = model.gaussian_conditional.scale_table.detach().to("cpu", torch.float64)
        # scale <= t on the grid  <=>  integer scale <= floor(t * 2**ACT_BITS)
        self.thresholds = torch.floor(table[:-1] * 2.0**ACT_BITS).to(self.device)
        self.M = model.M

    def _conv(self, x: Tensor, spec: dict, split: int = 1) -> Tensor:
        """Integer accumulation; ``split`` sums input-channel groups separately (tests use it)."""
        w = spec["weight"]
        parts = []
        for idx in torch.arange(x.shape[1]).chunk(split):
            idx = idx.to(x.device)
            if spec["transposed"]:
                parts.append(
                    F.conv_transpose2d(
                        x[:, idx],
                        w[idx],
                        None,
                        spec["stride"],
                        spec["padding"],
                        spec["output_padding"],
                    )
                )
            else:
                parts.append(F.conv2d(x[:, idx], w[:, idx], None, spec["stride"], spec["padding"]))
        acc = parts[-1]
        for p in reversed(parts[:-1]):  # another order than plain summation
            acc = acc + p
        return acc + spec["bias"][None, :, None, None]

    @staticmethod
    def _rescale(acc: Tensor, shift: int, leaky: bool) -> Tensor:
        if leaky:
            acc = torch.where(acc < 0, acc * SLOPE_NUM, acc * 2.0**SLOPE_SHIFT)
            shift += SLOPE_SHIFT
        out = torch.floor(acc * 2.0**-shift + 0.5)
        return out.clamp_(-ACT_LIMIT, ACT_LIMIT)

    def integer_params(self, z_symbols: Tensor, split: int = 1) -> Tensor:
        """Integer output (scales then means, ``2**ACT_BITS`` per unit) from ``z`` symbols."""
        x = z_symbols.to(self.device, torch.float64) * 2.0**ACT_BITS
        x = x + self.median_int[None, :, None, None]
        with torch.backends.cudnn.flags(enabled=False):  # no FFT or Winograd algorithms
            for i, spec in enumerate(self.layers):
                x = self._rescale(self._conv(x, spec, split), spec["shift"], leaky=i < 2)
        return x

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
