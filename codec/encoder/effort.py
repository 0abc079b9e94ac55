"""Encoder effort: per-image optimisation of the gained latents, with the decoder fixed.

The decoder only sees entropy-coded latents, so the encoder may send any latents it likes. The
analysis transform's ``y = g_a(x)`` is a guess amortised over all images, not the best latents
for this one: gradient steps on the image's own rate-distortion loss find latents that cost
fewer bits for the same error, or less error for the same bits (Campos et al. 2019, "Content
Adaptive Optimization for Neural Image Compression"; Yang, Bamler and Mandt 2020, "Improving
Inference for Neural Image Compression").

Rounding is straight-through, as the decoder saw it in training. Stochastic Gumbel annealing
(Yang et al.) was measured too and lost at these iteration counts. The relaxed loss only guides
the search: candidates are judged by the true loss of the file they give (real stream bytes,
8-bit reconstruction) and the forward pass's latents remain the answer unless a candidate beats
them, so more effort never gives a worse file.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..errors import CodecError
from ..net.msh_gain import ste_round

#: Optimisation steps per effort level. 1 is the plain forward pass (the same bytes as without
#: effort); each level above costs roughly 1.5-2x the one below, like cjxl's --effort.
ITERATIONS: dict[int, int] = {1: 0, 2: 25, 3: 50, 4: 100, 5: 160, 6: 250, 7: 400, 8: 600, 9: 1000}
DEFAULT_EFFORT = 1

#: Adam's step on the gained latents (which live on a unit quantization grid), decayed to a
#: tenth of it by a cosine so that the last iterates settle.
LEARNING_RATE = 0.05
#: How many times during a run the true (coded) loss of the current latents is measured.
CHECKS = 8


def effort_iterations(effort: int) -> int:
    """Optimisation steps for an effort level; raises ``CodecError`` outside 1..9."""
    if isinstance(effort, bool) or not isinstance(effort, (int, np.integer)):
        raise CodecError(f"effort must be an integer from 1 to 9, got {effort!r}")
    if int(effort) not in ITERATIONS:
        raise CodecError(f"effort must be from 1 to 9, got {effort}")
    return ITERATIONS[int(effort)]


def _bits(likelihoods: Tensor, bound: float = 1e-9) -> Tensor:
    return -torch.log2(likelihoods.clamp_min(bound)).sum()


def relaxed_loss(
    model, x: Tensor, y: Tensor, inv_gain: Tensor, lmbda: Tensor, height: int, width: int
) -> Tensor:
    """λ·255²·MSE + bpp of gained latents ``y``, differentiable in ``y``.

    As ``GainedMeanScaleHyperprior.forward`` computes it, except that both ``z`` and
    ``y - means`` are rounded as the coder rounds them (straight through for the gradient), and
    the distortion only counts the image, not its padding.
    """
    eb = model.entropy_bottleneck
    z = model.h_a(y)
    medians = eb._get_medians().reshape(1, -1, 1, 1)
    z_hat = ste_round(z - medians) + medians
    # EntropyBottleneck._likelihood takes channels first: (C, 1, N).
    z_lik = eb._likelihood(z_hat.permute(1, 0, 2, 3).reshape(z_hat.shape[1], 1, -1))
    z_lik = z_lik[0] if isinstance(z_lik, tuple) else z_lik
    scales, means = model.h_s(z_hat).chunk(2, 1)
    y_hat = ste_round(y - means) + means
    y_lik = model.gaussian_conditional._likelihood(y_hat, scales, means)
    bpp = (_bits(z_lik) + _bits(y_lik)) / (height * width)
    x_hat = model.g_s(y_hat * inv_gain)[..., :height, :width]
    mse = (x_hat - x[..., :height, :width]).square().mean()
    return lmbda * 255**2 * mse + bpp


def refine_latents(
    model,
    x: Tensor,
    y: Tensor,
    inv_gain: Tensor,
    lmbda: float,
    iterations: int,
    true_loss: Callable[[Tensor], float],
    height: int,
    width: int,
) -> Tensor:
    """Latents for ``x`` whose file has a lower true RD loss than ``y``'s, or ``y`` itself.

    ``x`` is the padded image in [0, 1], ``y`` the gained forward-pass latents and
    ``true_loss(latents)`` the loss of the file they code to. Runs on whatever device the
    tensors are on; the model's parameters get no gradients.
    """
    if iterations <= 0:
        return y
    best, best_loss = y, true_loss(y)
    # Also under a caller's inference_mode: work on ordinary copies with autograd enabled.
    with torch.inference_mode(False), torch.enable_grad():
        x, inv_gain = x.clone(), inv_gain.clone()
        latent = y.detach().clone().requires_grad_(True)
        lmbda_t = torch.tensor(lmbda, device=y.device)
        opt = torch.optim.Adam([latent], lr=LEARNING_RATE)
        every = max(1, iterations // CHECKS)
        for step in range(iterations):
            loss = relaxed_loss(model, x, latent, inv_gain, lmbda_t, height, width)
            (latent.grad,) = torch.autograd.grad(loss, [latent])
            opt.param_groups[0]["lr"] = LEARNING_RATE * (
                0.55 + 0.45 * math.cos(math.pi * step / iterations)
            )
            opt.step()
            if (step + 1) % every == 0 or step + 1 == iterations:
                candidate = latent.detach().clone()
                value = true_loss(candidate)
                if value < best_loss:
                    best, best_loss = candidate, value
    return best
