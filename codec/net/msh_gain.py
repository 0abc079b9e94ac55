"""The network: a CompressAI mean-scale hyperprior with a continuous rate control.

One set of weights covers the whole quality range through *gain units* (Cui et al. 2021,
"Asymmetric Gained Deep Image Compression"): the latent ``y`` is multiplied channel-wise by a
learned gain vector before quantization and by a learned inverse gain after it. Gain vectors are
learned for a ladder of rate-distortion trade-offs (lambdas); any rate in between is reached by
log-linear interpolation, so quality 0–100 maps onto one continuous parameter ``rate`` in
``[0, levels - 1]``.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn

with warnings.catch_warnings():  # compressai still uses torch.jit.script, deprecated upstream
    warnings.simplefilter("ignore", FutureWarning)
    from compressai.models import MeanScaleHyperprior

from .ladder import DEFAULT_LAMBDAS
from .layers import for_inference

ARCHITECTURE = "msh-gain"


def ste_round(x: Tensor) -> Tensor:
    """Round in the forward pass, identity in the backward pass."""
    return (torch.round(x) - x).detach() + x


class GainedMeanScaleHyperprior(MeanScaleHyperprior):
    """MeanScaleHyperprior whose rate is chosen at run time by a continuous ``rate`` value."""

    def __init__(self, N: int = 128, M: int = 192, lambdas: tuple[float, ...] = DEFAULT_LAMBDAS):
        super().__init__(N=N, M=M)
        self.N, self.M = N, M
        self.lambdas = tuple(float(v) for v in lambdas)
        levels = len(self.lambdas)
        # A coarser step for lower lambdas: start near the square-root law of the step sizes that
        # separately trained models settle on, then let training refine each channel.
        init = torch.tensor([0.5 * math.log(v / self.lambdas[-1]) for v in self.lambdas])
        self.log_gain = nn.Parameter(init[:, None].repeat(1, M).clone())
        self.log_inv_gain = nn.Parameter(-init[:, None].repeat(1, M).clone())
        self.levels = levels
        #: Pixels per hyper-latent, the padding multiple: the product of every stride of the
        #: analysis and hyper-analysis transforms (64).
        self.stride = math.prod(
            m.stride[0]
            for t in (self.g_a, self.h_a)
            for m in t.modules()
            if isinstance(m, nn.Conv2d)
        )

    # -- rate control -------------------------------------------------------------------------

    def _interp(self, table: Tensor, rate: Tensor) -> Tensor:
        """Log-linear interpolation of a per-level table at fractional positions ``rate``."""
        rate = rate.clamp(0, self.levels - 1)
        lo = rate.floor().long().clamp(max=self.levels - 2)
        frac = (rate - lo.to(rate.dtype))[:, None]
        return table[lo] * (1 - frac) + table[lo + 1] * frac

    def gains(self, rate: Tensor) -> tuple[Tensor, Tensor]:
        """Gain and inverse gain, shaped (B, M, 1, 1), for a batch of rate values."""
        g = torch.exp(self._interp(self.log_gain, rate))
        ig = torch.exp(self._interp(self.log_inv_gain, rate))
        return g[:, :, None, None], ig[:, :, None, None]

    def lmbda(self, rate: Tensor) -> Tensor:
        """The training lambda that belongs to each rate value (log-linear in between)."""
        table = torch.log(torch.tensor(self.lambdas, device=rate.device))[:, None]
        return torch.exp(self._interp(table, rate))[:, 0]

    def prepare_inference(self, dtype: torch.dtype = torch.float32) -> None:
        """Swap the transforms for their inference forms (codec/net/layers.py); the synthesis and
        analysis compute in ``dtype``, the hyper-analysis always in float32."""
        self.g_a, self.g_s = for_inference(self.g_a, dtype), for_inference(self.g_s, dtype)
        self.h_a = for_inference(self.h_a)

    # -- training -----------------------------------------------------------------------------

    def analysis_parameters(self) -> list[nn.Parameter]:
        """What only the encoder computes with: a phase that freezes these keeps the latents
        the decoder side trains on the ones files will carry."""
        return [*self.g_a.parameters(), *self.h_a.parameters(), self.log_gain]

    def forward(self, x: Tensor, rate: Tensor | None = None) -> dict:
        if rate is None:
            rate = torch.full((x.shape[0],), float(self.levels - 1), device=x.device)
        g, ig = self.gains(rate)
        y = self.g_a(x) * g
        z = self.h_a(y)
        # Under mixed precision the transforms may run in bf16; the entropy models never do.
        with torch.autocast(device_type=x.device.type, enabled=False):
            z_hat, z_likelihoods = self.entropy_bottleneck(z.float())
        scales, means = self.h_s(z_hat).chunk(2, 1)
        with torch.autocast(device_type=x.device.type, enabled=False):
            y, scales, means = y.float(), scales.float(), means.float()
            _, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
            # Noise for the rate term, straight-through rounding for the decoder: the decoder
            # then trains on the same rounded latents it will see when decoding real files.
            y_hat = ste_round(y - means) + means
        x_hat = self.g_s(y_hat * ig).float()
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}


def remap_ladder(table: Tensor, src: tuple[float, ...], dst: tuple[float, ...]) -> Tensor:
    """Carry a per-level gain table onto another lambda ladder.

    Gains are close to linear in log-lambda, so new rungs start from the line through the nearest
    two trained ones (interpolated inside the old ladder, extrapolated outside it). This lets a run
    widen its rate range without losing what the old rungs learned.
    """
    xs = torch.log(torch.tensor(src, dtype=torch.float64))
    rows = []
    for lam in dst:
        x = math.log(lam)
        hi = int(
            torch.searchsorted(xs, torch.tensor(x, dtype=torch.float64)).clamp(1, len(src) - 1)
        )
        lo = hi - 1
        t = (x - float(xs[lo])) / float(xs[hi] - xs[lo])
        rows.append(table[lo] * (1 - t) + table[hi] * t)
    return torch.stack(rows).to(table.dtype)
