"""Encoder effort: per-image optimisation of the latents, with the decoder fixed.

The decoder only sees entropy-coded latents, so the encoder may send any latents it likes. The
analysis transform's ``y = g_a(x)`` (and the hyper-latent ``z = h_a(y)``) are guesses amortised
over all images, not the best latents for this one: gradient steps on the image's own
rate-distortion loss find latents that cost fewer bits for the same error, or less error for the
same bits (Campos et al. 2019; Yang, Bamler and Mandt 2020, "Improving Inference for Neural
Image Compression", arXiv 2006.04240).

Both ``y`` and ``z`` are optimised with Adam on the relaxed loss of codec/encoder/sga.py under
stochastic Gumbel annealing (SGA): rounding is a random draw between the two neighbouring
integers whose temperature falls geometrically over the run, so the loss the optimiser sees
turns into the hard-rounded one. Straight-through rounding, which this module used before, makes
the file *worse* with the shipped weights: Adam moves every latent by about its step size
whatever the size of its gradient, and straight-through gradients do not see what crossing a
rounding boundary costs, so the many near-zero latents wander into neighbouring bins (the true
loss of a 128x128 crop rose by 40-60 % within ten steps; SGA lowered it from the first check).

The relaxed loss only guides the search: every few steps the hard-rounded latents are coded and
judged by the true loss of their file (real stream bytes, 8-bit reconstruction), and the forward
pass's latents remain the answer unless a candidate beats them, so more effort never gives a
worse file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..errors import CodecError
from ..net.tiling import DOWN, spans
from .sga import SGA, Objective, hard_round, objective_for, temperature

#: Pixels per hyper-latent (the hyperprior's total down-sampling).
HYPER = 64

#: Optimisation steps per effort level. 1 is the plain forward pass (the same bytes as without
#: effort); each level above costs roughly 1.5-2x the one below, like cjxl's --effort.
ITERATIONS: dict[int, int] = {1: 0, 2: 10, 3: 20, 4: 40, 5: 80, 6: 150, 7: 250, 8: 400, 9: 600}
DEFAULT_EFFORT = 1

#: Adam's step on the latents (gained: a unit quantization grid), constant over the run.
#: Measured on 128x128 crops at 40 steps: 0.01 beat 0.005, 0.02, 0.05 and 0.1 (0.05 and up
#: made the file worse than the plain one, as straight-through rounding did at any step).
LEARNING_RATE = 0.01
#: SGA temperature at the first and the last step (geometric in between).
TAU_START, TAU_END = 0.5, 0.05
#: Images of at most this many (padded) pixels are refined in one piece; larger ones tile by
#: tile, cores of ``TILE`` pixels with ``HALO`` pixels of context on every side (multiples of 64:
#: the hyper-latent grid). The context covers the synthesis transform's reach (a few latents)
#: and the hyper-synthesis' (two hyper-latents) twice over.
WHOLE_PIXELS = 1 << 19
TILE = 512
HALO = 128
#: How many times during a run the true (coded) loss of the current latents is measured; the
#: last step is always measured.
CHECKS = 6

#: Whether refinement draws a progress bar (with an estimate of the time left) on stderr:
#: False, True, or None for "when stderr is a terminal".
_progress: ContextVar[bool | None] = ContextVar("effort_progress", default=False)


@contextmanager
def progress(enabled: bool = True, tty_only: bool = False) -> Iterator[None]:
    """Within this block, effort draws a per-iteration progress bar on stderr, with the time
    left; ``tty_only`` draws it only when stderr is a terminal (the CLI's choice)."""
    token = _progress.set(None if enabled and tty_only else enabled)
    try:
        yield
    finally:
        _progress.reset(token)


def effort_iterations(effort: int) -> int:
    """Optimisation steps for an effort level; raises ``CodecError`` outside 1..9."""
    if isinstance(effort, bool) or not isinstance(effort, (int, np.integer)):
        raise CodecError(f"effort must be an integer from 1 to 9, got {effort!r}")
    if int(effort) not in ITERATIONS:
        raise CodecError(f"effort must be from 1 to 9, got {effort}")
    return ITERATIONS[int(effort)]


def refine(
    objective: Objective,
    latents: list[Tensor],
    iterations: int,
    true_loss: Callable[[list[Tensor]], float],
    *,
    masks: list[Tensor | None] | None = None,
    lr: float = LEARNING_RATE,
    checks: int = CHECKS,
    seed: int = 0,
    bar=None,
) -> list[Tensor] | None:
    """Latents whose true loss beats ``latents``' own, or None when no candidate did.

    ``true_loss`` judges a list of latents like ``latents`` (hard-rounded as the coder rounds
    them). ``masks`` (1 where a latent may change) freeze the rest, for a tile's context. The
    draws are seeded, so the result is deterministic. Runs on whatever device the tensors are
    on; the model's parameters get no gradients.
    """
    if iterations <= 0:
        return None
    with torch.no_grad():
        best, best_loss = None, true_loss(latents)
    every = max(1, iterations // max(1, checks))
    generator = torch.Generator().manual_seed(seed)
    # Also under a caller's inference_mode: work on ordinary copies with autograd enabled.
    with torch.inference_mode(False), torch.enable_grad():
        free = [t.detach().clone().requires_grad_(True) for t in latents]
        opt = torch.optim.Adam(free, lr=lr)
        for step in range(iterations):
            tau = temperature(step, iterations, TAU_START, TAU_END)
            loss = objective.loss(free, SGA(tau, generator))
            grads = torch.autograd.grad(loss, free)
            for i, (t, g) in enumerate(zip(free, grads)):
                mask = masks[i] if masks is not None else None
                t.grad = g if mask is None else g * mask
            opt.step()
            if (step + 1) % every == 0 or step + 1 == iterations:
                candidate = [t.detach().clone() for t in free]
                with torch.no_grad():
                    value = true_loss(candidate)
                if value < best_loss:
                    best, best_loss = candidate, value
            if bar is not None:
                bar.update(1)
    return best


def refine_latents(
    model,
    pixels: np.ndarray,
    padded: tuple[int, int],
    y: Tensor,
    inv_gain: Tensor,
    lmbda: float,
    iterations: int,
    file_loss: Callable[[Tensor, Tensor | None], float],
    *,
    tile: int = 0,
    label: str = "effort",
) -> tuple[Tensor, Tensor | None]:
    """The ``(y, z)`` to code for ``pixels`` (HxWx3 uint8, edge-padded to ``padded``).

    ``y`` is the gained forward-pass latent and ``file_loss(y, z)`` the true loss of the file a
    pair codes to (``z`` None: ``h_a(y)``, the plain file). Returns ``(y, None)`` unless the
    refined pair's file is better. An image of at most ``WHOLE_PIXELS`` (padded) is optimised
    in one piece, every candidate judged by its real file; a larger one tile by tile
    (``refine_tiles``), so that memory stays bounded.
    """
    if iterations <= 0:
        return y, None
    height, width = pixels.shape[:2]
    ph, pw = padded
    tile = tile or TILE
    cores = [(r, c) for r in spans(ph, tile, 64) for c in spans(pw, tile, 64)]
    whole = ph * pw <= WHOLE_PIXELS or len(cores) == 1
    bar = _bar(iterations * (1 if whole else len(cores)), label)
    try:
        if whole:
            x = _window(pixels, 0, ph, 0, pw, y.device)
            objective = objective_for(model, x, inv_gain, lmbda, height, width)
            start = objective.start(y)
            best = refine(
                objective, start, iterations, lambda ls: file_loss(*objective.coded(ls)), bar=bar
            )
            return (y, None) if best is None else objective.coded(best)
        y_new, z_new = refine_tiles(
            model, pixels, padded, y, inv_gain, lmbda, iterations, cores, bar
        )
    finally:
        if bar is not None:
            bar.close()
    # The tiles were judged by an estimate; the whole file decides.
    if file_loss(y_new, z_new) < file_loss(y, None):
        return y_new, z_new
    return y, None


def refine_tiles(
    model,
    pixels: np.ndarray,
    padded: tuple[int, int],
    y: Tensor,
    inv_gain: Tensor,
    lmbda: float,
    iterations: int,
    cores: list[tuple[tuple[int, int], tuple[int, int]]],
    bar=None,
) -> tuple[Tensor, Tensor]:
    """Block-coordinate refinement: each tile's latents in turn, the others held fixed.

    A tile's window adds ``HALO`` pixels of context on every side: the synthesis of every pixel
    its latents reach, and the entropy parameters of every latent its hyper-latents reach, are
    computed from real neighbours (already refined ones where the sweep has passed), so the
    tiles optimise one whole-image loss and leave no seams. Candidates are judged on the window
    by the hard-rounded loss (model likelihoods, 8-bit pixels); memory is that of one window.
    """
    with torch.no_grad():
        y = y.clone()
        z = model.h_a(y)
    for core in cores:
        objective, ys, zs, masks = tile_problem(model, pixels, padded, y, z, inv_gain, lmbda, core)

        def estimate(ls: list[Tensor], objective=objective) -> float:
            return float(objective.loss(ls, hard_round, pixel_levels=True))

        best = refine(objective, [y[ys], z[zs]], iterations, estimate, masks=masks, bar=bar)
        if best is not None:
            y[ys], z[zs] = best
        del objective, best
    return y, z


def tile_problem(
    model,
    pixels: np.ndarray,
    padded: tuple[int, int],
    y: Tensor,
    z: Tensor,
    inv_gain: Tensor,
    lmbda: float,
    core: tuple[tuple[int, int], tuple[int, int]],
):
    """One tile's objective on its window, the window's slices of ``y`` and ``z``, and the
    masks of the core's latents within them."""
    height, width = pixels.shape[:2]
    ph, pw = padded
    (r0, r1), (c0, c1) = core
    a0, a1 = max(0, r0 - HALO), min(ph, r1 + HALO)
    b0, b1 = max(0, c0 - HALO), min(pw, c1 + HALO)
    x = _window(pixels, a0, a1, b0, b1, y.device)
    ys = (slice(None), slice(None), slice(a0 // DOWN, a1 // DOWN), slice(b0 // DOWN, b1 // DOWN))
    zs = (
        slice(None),
        slice(None),
        slice(a0 // HYPER, a1 // HYPER),
        slice(b0 // HYPER, b1 // HYPER),
    )
    masks = [
        _core_mask(y[ys], r0 - a0, r1 - a0, c0 - b0, c1 - b0, DOWN),
        _core_mask(z[zs], r0 - a0, r1 - a0, c0 - b0, c1 - b0, HYPER),
    ]
    vh, vw = max(0, min(a1, height) - a0), max(0, min(b1, width) - b0)
    return objective_for(model, x, inv_gain, lmbda, vh, vw), ys, zs, masks


def _core_mask(t: Tensor, top: int, bottom: int, left: int, right: int, down: int) -> Tensor:
    """1 on a window's core (pixel bounds given relative to the window), 0 on its context."""
    mask = torch.zeros((1, 1, *t.shape[-2:]), dtype=t.dtype, device=t.device)
    mask[..., top // down : -(-bottom // down), left // down : -(-right // down)] = 1
    return mask


def _window(pixels: np.ndarray, a0: int, a1: int, b0: int, b1: int, device) -> Tensor:
    """Pixel rows ``a0:a1`` and columns ``b0:b1`` in [0, 1], edge-replicated past the image."""
    height, width = pixels.shape[:2]
    rows = np.minimum(np.arange(a0, a1), height - 1)
    cols = np.minimum(np.arange(b0, b1), width - 1)
    patch = np.ascontiguousarray(pixels[rows[:, None], cols[None, :]])
    x = torch.from_numpy(patch).to(device).permute(2, 0, 1)[None]
    return x.float().div_(255)


def _bar(iterations: int, label: str):
    mode = _progress.get()
    if mode is False:
        return None
    import sys

    from tqdm import tqdm

    return tqdm(
        total=iterations,
        desc=label,
        unit="step",
        file=sys.stderr,
        leave=False,
        disable=None if mode is None else False,
    )
