"""Relaxed rate-distortion objectives and the rounding relaxations the effort search uses.

An *objective* knows one architecture's entropy model: it turns free latents (for the mean-scale
hyperprior, the gained latent ``y`` and the hyper-latent ``z``) into a differentiable
λ·255²·MSE + bpp (λ·MS_SSIM_WEIGHT·(1 − MS-SSIM) + bpp for a release tuned for MS-SSIM, as it
was trained), given a *quantizer* that stands in for the coder's rounding of each latent's
residual. Another architecture (a context model) brings its own objective with the same three
methods, registered in ``OBJECTIVES`` under its network's class name, and the search in
codec/encoder/effort.py works unchanged.

Quantizers:

- ``ste_round``: rounds in the forward pass, identity in the backward pass (what training's
  decoder saw). Its gradient ignores that a latent only changes the file when it crosses a
  rounding boundary, so small steps drift inside the bins and larger ones cross many boundaries
  at once in directions the gradient did not promise.
- ``SGA``: stochastic Gumbel annealing (Yang, Bamler and Mandt 2020, "Improving Inference for
  Neural Image Compression", arXiv 2006.04240). Each residual is rounded down or up at random,
  more likely towards the nearer integer, through a Gumbel-softmax relaxation whose temperature
  anneals towards zero, so the objective becomes the hard-rounded one by the end. The gradient
  then sees what a boundary crossing would cost.
- ``SSL``: SGA+'s sigmoid-scaled logit (Perugachi-Diaz, Gansekoele and Bhulai 2024, "Robustly
  overfitting latents for flexible neural image compression", arXiv 2401.17789): the same
  annealed draw with rounding probabilities that sharpen around the midpoint by a factor
  ``a``, over a warmer range of temperatures. The search's relaxation (docs/EFFORT.md).
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch
from torch import Tensor

from ..errors import CodecError
from ..metrics import distortion_term, measurable

Quantizer = Callable[[Tensor], Tensor]


def ste_round(v: Tensor) -> Tensor:
    """Round in the forward pass, identity in the backward pass."""
    return (torch.round(v) - v).detach() + v


def hard_round(v: Tensor) -> Tensor:
    return torch.round(v)


class SGA:
    """Stochastic Gumbel annealing of rounding at temperature ``tau`` (a callable quantizer).

    ``v`` becomes ``floor(v) + s`` with ``s`` in (0, 1) a relaxed Bernoulli sample: the logit of
    rounding down is ``-atanh(v - floor(v)) / tau``, of rounding up ``-atanh(ceil(v) - v) / tau``
    (Yang et al.'s choice), and the two-class Gumbel-softmax at temperature ``tau`` draws ``s``.
    As ``tau`` goes to 0 the sample becomes the hard rounding.
    """

    EPS = 1e-5

    def __init__(self, tau: float, generator: torch.Generator | None = None):
        self.tau = float(tau)
        self.generator = generator

    def preference(self, d: Tensor) -> Tensor:
        """Log-odds of rounding up over down at unit temperature, for the fraction ``d``."""
        return torch.atanh(d) - torch.atanh(1 - d)

    def __call__(self, v: Tensor) -> Tensor:
        lo = torch.floor(v).detach()
        d = (v - lo).clamp(self.EPS, 1 - self.EPS)
        u = torch.rand(v.shape, generator=self.generator, device="cpu").to(v.device)
        u = u.clamp(1e-7, 1 - 1e-7)
        logistic = torch.log(u) - torch.log1p(-u)  # difference of two Gumbel variables
        return lo + torch.sigmoid((self.preference(d) / self.tau + logistic) / self.tau)


class SSL(SGA):
    """SGA+'s sigmoid-scaled logit: rounding down has probability proportional to
    ``sigmoid(-a * logit(d)) ** (1 / tau)``, up to ``sigmoid(a * logit(d)) ** (1 / tau)``, so the
    log-odds are ``a * logit(d) / tau``; ``a`` = 1 is linear in the distance, SGA+'s ``a`` = 2.3
    sharper near the midpoint. Sharper than Yang's probabilities at the same temperature, so
    it anneals from a warmer start."""

    A = 2.3

    def preference(self, d: Tensor) -> Tensor:
        return self.A * (torch.log(d) - torch.log1p(-d))


#: The relaxation the effort search anneals, and its temperature at the start of an anneal
#: and at its end (chosen by measurement, docs/EFFORT.md).
RELAXATION: type[SGA] = SSL
TAU_START, TAU_END = 1.0, 0.2


def temperature(step: int, horizon: int) -> float:
    """The relaxation's temperature at ``step`` (from 0): geometric from ``TAU_START`` to
    ``TAU_END`` over ``horizon`` steps, then ``TAU_END``. The shape of Yang et al.'s exponential
    schedule; on the step count alone, so that a short search is the beginning of a longer
    one."""
    frac = min(max(step, 0), horizon) / max(1, horizon)
    return TAU_START * (TAU_END / TAU_START) ** frac


class Objective(Protocol):
    """What the effort search needs from an architecture."""

    def start(self, y: Tensor) -> list[Tensor]:
        """The free latents to optimise, from the forward pass's gained ``y``."""

    def loss(self, latents: list[Tensor], quantize: Quantizer, judge: bool = False) -> Tensor:
        """Differentiable λ·D + bpp (D: 255²·MSE, or the MS-SSIM term for a release tuned for
        it) with ``quantize`` standing in for rounding;
        ``judge`` computes as a decoder does: float32 synthesis, distortion on 8-bit pixels."""

    def coded(self, latents: list[Tensor]) -> tuple[Tensor, Tensor | None]:
        """The ``(y, z)`` to hand to the entropy coder (``z`` None: the coder derives it)."""


def _bits(likelihoods: Tensor, bound: float = 1e-9) -> Tensor:
    return -torch.log2(likelihoods.clamp_min(bound)).sum()


class MeanScaleObjective:
    """The objective of ``GainedMeanScaleHyperprior`` (architecture ``msh-gain``).

    Free latents: ``y`` (gained) and ``z``. The coder sends ``round(z - medians)`` and
    ``round(y - means)`` with ``means`` from the decoded ``z``; the relaxation replaces both
    roundings by ``quantize``. Distortion counts only the image, not its padding; ``x`` is the
    padded image in [0, 1].
    """

    def __init__(
        self,
        model,
        x: Tensor,
        inv_gain: Tensor,
        lmbda: float,
        height: int,
        width: int,
        bf16: bool = False,
        distortion: str = "mse",
    ) -> None:
        self.model = model
        self.bf16 = bf16
        self.x, self.inv_gain = x, inv_gain
        self.lmbda = float(lmbda)
        self.height, self.width = height, width
        self.distortion = measurable(distortion, height, width)
        eb = model.entropy_bottleneck
        self.medians = eb.quantiles.detach()[:, 0, 1].reshape(1, -1, 1, 1).to(x.dtype)

    def start(self, y: Tensor) -> list[Tensor]:
        with torch.no_grad():
            return [y.detach().clone(), self.model.h_a(y).detach().clone()]

    def rate_and_latents(self, latents: list[Tensor], quantize: Quantizer) -> tuple[Tensor, Tensor]:
        """Bits of both latents, and the relaxed decoded ``y``."""
        y, z = latents
        eb, gc = self.model.entropy_bottleneck, self.model.gaussian_conditional
        z_hat = quantize(z - self.medians) + self.medians
        # EntropyBottleneck._likelihood takes channels first: (C, 1, N).
        z_lik = eb._likelihood(z_hat.permute(1, 0, 2, 3).reshape(z_hat.shape[1], 1, -1))
        z_lik = z_lik[0] if isinstance(z_lik, tuple) else z_lik
        scales, means = self.model.h_s(z_hat).chunk(2, 1)
        y_hat = quantize(y - means) + means
        y_lik = gc._likelihood(y_hat, scales, means)
        return _bits(z_lik) + _bits(y_lik), y_hat

    def loss(self, latents: list[Tensor], quantize: Quantizer, judge: bool = False) -> Tensor:
        bits, y_hat = self.rate_and_latents(latents, quantize)
        h, w = self.height, self.width
        # The synthesis is nearly all of a step's work; bf16 steers as well (docs/EFFORT.md).
        with torch.autocast(y_hat.device.type, torch.bfloat16, enabled=self.bf16 and not judge):
            x_hat = self.model.g_s(y_hat * self.inv_gain)
        x_hat = x_hat.float()[..., :h, :w]
        if judge:
            x_hat = x_hat.clamp(0, 1).mul(255).round().div(255)
        x = self.x[..., :h, :w]
        distortion = distortion_term(self.distortion, x_hat, x).sum()
        return self.lmbda * distortion + bits / (h * w)

    def coded(self, latents: list[Tensor]) -> tuple[Tensor, Tensor | None]:
        y, z = latents
        return y.detach(), z.detach()


class ContextObjective(MeanScaleObjective):
    """The objective of ``GainedContextHyperprior`` (architecture ``elic-gain``): the rate runs
    through the context model, each group's anchors then the rest, and every decoded latent
    that feeds a context is relaxed by ``quantize`` once, as the coder rounds it: the context,
    the rate and the synthesis see the same draw."""

    def rate_and_latents(self, latents: list[Tensor], quantize: Quantizer) -> tuple[Tensor, Tensor]:
        from ..net.elic_gain import checkerboard

        y, z = latents
        m = self.model
        eb, gc = m.entropy_bottleneck, m.gaussian_conditional
        z_hat = quantize(z - self.medians) + self.medians
        z_lik = eb._likelihood(z_hat.permute(1, 0, 2, 3).reshape(z_hat.shape[1], 1, -1))
        z_lik = z_lik[0] if isinstance(z_lik, tuple) else z_lik
        bits = _bits(z_lik)
        hyper = m.h_s(z_hat)
        anchor = checkerboard(*y.shape[-2:], device=y.device)
        decoded = []
        for k, (o, c) in enumerate(zip(m.offsets, m.groups)):
            yk = y[:, o : o + c]
            before = torch.cat(decoded, 1) if k else None
            first = m.group_params(k, hyper, before, None)
            means = first.chunk(2, 1)[1]
            # One draw per anchor: the context must see the anchors the rate and the synthesis see.
            drawn = quantize(yk - means) + means
            second = m.group_params(k, hyper, before, m.spatial_context[k](drawn * anchor))
            scales, means = torch.where(anchor, first, second).chunk(2, 1)
            yk_hat = torch.where(anchor, drawn, quantize(yk - means) + means)
            bits = bits + _bits(gc._likelihood(yk_hat, scales, means))
            decoded.append(yk_hat)
        return bits, torch.cat(decoded, 1)


#: The objective class of each network class (by class name), built as
#: ``Objective(model, x, inv_gain, lmbda, height, width, bf16, distortion)``. An architecture
#: that supports effort adds its network's line here; codec/encoder/effort.py does not change.
OBJECTIVES: dict[str, type] = {
    "GainedContextHyperprior": ContextObjective,
    "GainedMeanScaleHyperprior": MeanScaleObjective,
}


def objective_for(
    model,
    x: Tensor,
    inv_gain: Tensor,
    lmbda: float,
    height: int,
    width: int,
    bf16: bool = False,
    distortion: str = "mse",
) -> Objective:
    """The relaxed objective of ``model``'s architecture, looked up in ``OBJECTIVES`` by the
    network's class name; ``CodecError`` for a network that has none. ``bf16`` runs the relaxed
    loss's synthesis in bfloat16 autocast (never a judging loss); ``distortion`` is the one
    searched for, the tune's or else the release's (MS-SSIM falls back to MSE on images too
    small for it)."""
    name = type(model).__name__
    try:
        cls = OBJECTIVES[name]
    except KeyError:
        raise CodecError(
            f"effort above 1 is not available for network {name}: "
            "no relaxed objective is registered for it"
        ) from None
    return cls(model, x, inv_gain, lmbda, height, width, bf16, distortion)


__all__ = [
    "RELAXATION",
    "SGA",
    "SSL",
    "MeanScaleObjective",
    "OBJECTIVES",
    "Objective",
    "Quantizer",
    "TAU_END",
    "TAU_START",
    "hard_round",
    "objective_for",
    "ste_round",
    "temperature",
]
