"""Encoder effort: per-image optimisation of the latents, with the decoder fixed.

The decoder only sees entropy-coded latents, so the encoder may send any latents it likes. The
analysis transform's ``y = g_a(x)`` (and the hyper-latent ``z = h_a(y)``) are guesses amortised
over all images, not the best latents for this one: gradient steps on the image's own
rate-distortion loss find latents that cost fewer bits for the same error, or less error for the
same bits (Campos et al. 2019; Yang, Bamler and Mandt 2020, "Improving Inference for Neural
Image Compression", arXiv 2006.04240).

Both ``y`` and ``z`` are optimised with Adam on the relaxed loss of codec/encoder/sga.py under
stochastic Gumbel annealing (SGA, with SGA+'s rounding probabilities): rounding is a random
draw between the two neighbouring integers whose temperature falls geometrically over the run,
so the loss the optimiser sees turns into the hard-rounded one. Straight-through rounding,
which this module used before, makes the file *worse* with the shipped weights: Adam moves
every latent by about its step size whatever the size of its gradient, and straight-through
gradients do not see what crossing a rounding boundary costs, so the many near-zero latents
wander into neighbouring bins (the true loss of a 128x128 crop rose by 40-60 % within ten
steps; SGA lowered it from the first check).

The relaxed loss only guides the search: every few steps the hard-rounded latents are coded and
judged by the true loss of their file (real stream bytes, 8-bit reconstruction), and the forward
pass's latents remain the answer unless a candidate beats them, so more effort never gives a
worse file.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from ..errors import CodecError
from ..hardware import native_bf16
from ..malloc import release_freed_memory
from ..metrics import MS_SSIM_MIN_SIDE, uses_ms_ssim
from ..net.tiling import DOWN, spans
from . import sga
from .sga import Objective, hard_round, objective_for, temperature

#: Pixels per hyper-latent (the hyperprior's total down-sampling).
HYPER = 64

#: Optimisation steps per effort level. 1 is the plain forward pass (the same bytes as without
#: effort); each level above costs roughly 1.5-2x the one below, like cjxl's --effort.
ITERATIONS: dict[int, int] = {1: 0, 2: 10, 3: 20, 4: 40, 5: 80, 6: 150, 7: 250, 8: 400, 9: 600}
DEFAULT_EFFORT = 1

#: Adam's first step on the latents (gained: a unit quantization grid); it falls as a cosine
#: to 0 over the anneal (``step_size``; chosen by measurement, docs/EFFORT.md).
LEARNING_RATE = 0.015
#: Images of at most this many (padded) pixels are refined in one piece; larger ones tile by
#: tile, cores of ``TILE`` pixels with ``HALO`` pixels of context on every side (multiples of 64:
#: the hyper-latent grid). The context covers the synthesis transform's reach (a few latents)
#: and the hyper-synthesis' (two hyper-latents) twice over. The window's forward and backward
#: pass is the search's memory, so ``TILE`` keeps a 24-megapixel photo within the plain
#: encode's bound (docs/EFFORT.md).
WHOLE_PIXELS = 1 << 19
TILE = 384
HALO = 128
#: Whether the relaxed loss runs the synthesis transform in bfloat16 autocast: ``None`` where
#: the device computes bf16 natively (codec.hardware.native_bf16). It only steers the search;
#: every candidate is judged in float32 by its real file, so it changes speed, not safety.
SEARCH_BF16: bool | None = None


def steers_in_bf16(device: torch.device | str) -> bool:
    """Whether a search on ``device`` runs its relaxed loss in bfloat16 (``SEARCH_BF16``)."""
    return native_bf16(torch.device(device)) if SEARCH_BF16 is None else SEARCH_BF16


def horizon() -> int:
    """The steps over which SGA's temperature falls: the top level's budget, for every level.
    A level's search is then the beginning of the next level's (one search yields them all),
    and the top level gets the long, slow anneal that gains most (docs/EFFORT.md compares
    anneals over each level's own budget and anneals restarted at every level)."""
    return max(ITERATIONS.values())


def step_size(step: int, lr: float = LEARNING_RATE) -> float:
    """Adam's step before ``step`` (from 0): a cosine from ``lr`` to 0 over ``horizon()``
    steps. Late steps then settle the latents while the temperature is low instead of moving
    them between bins; on the step count alone, like the temperature."""
    frac = min(max(step, 0), horizon()) / horizon()
    return lr * 0.5 * (1.0 + math.cos(math.pi * frac))


def checked(step: int, budgets: Sequence[int] = ()) -> bool:
    """Whether the true loss is measured after ``step`` (counted from 1) steps: often early,
    where each step moves the loss most, every 10 steps later, and at every level's budget.

    Like the temperature, this depends on the step alone, not on the run's length: a run of
    ``ITERATIONS[n]`` steps is the first part of every longer run, judged at the same points.
    """
    return (
        step % 10 == 0
        or (step <= 20 and step % 2 == 0)
        or step in ITERATIONS.values()
        or step in budgets
    )


@dataclass
class Refined:
    """The best latents of a search at one budget (None: none beat the start), and the
    wall-clock and CPU seconds the search had run when it reached that budget."""

    latents: list[Tensor] | None
    seconds: float
    cpu_seconds: float


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


class Adam:
    """Adam (Kingma and Ba) on the latents, written out as ``torch.optim.Adam`` computes it on
    the CPU: that class's constructor imports ``torch._dynamo``, which every encode with effort
    would otherwise wait for."""

    def __init__(
        self,
        params: list[torch.Tensor],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params, (self.b1, self.b2), self.eps, self.t = params, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, lr: float) -> None:
        """One step along each parameter's ``.grad``."""
        self.t += 1
        bc1, bc2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            m.lerp_(g, 1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            denom = (v.sqrt() / bc2**0.5).add_(self.eps)
            p.addcdiv_(m, denom, value=-lr / bc1)


def refine(
    objective: Objective,
    latents: list[Tensor],
    budgets: Sequence[int],
    true_loss: Callable[[list[Tensor]], float],
    *,
    masks: list[Tensor | None] | None = None,
    lr: float = LEARNING_RATE,
    seed: int = 0,
    bar=None,
) -> list[Refined]:
    """For each budget (steps, ascending), the latents whose true loss beats ``latents``' own
    and every earlier candidate's, as found within that many steps.

    ``true_loss`` judges a list of latents like ``latents`` (hard-rounded as the coder rounds
    them) at the steps ``checked`` names. The temperature, the step size and the checks follow
    the step count alone, so the answer for a budget is the same whatever other budgets one run
    also reports: a search to effort 9 hands back every lower level's file on the way.
    ``masks`` (1 where a latent may change) freeze the rest, for a tile's context. The draws
    are seeded, so the result is deterministic. Runs on whatever device the tensors are on; the
    model's parameters get no gradients.
    """
    budgets = sorted(set(budgets))
    t0, c0 = time.perf_counter(), time.process_time()
    best = None
    pending = [b for b in budgets if b > 0]
    results = [Refined(None, 0.0, 0.0) for b in budgets if b <= 0]
    if not pending:
        return results
    with torch.no_grad():
        best_loss = true_loss(latents)
    generator = torch.Generator().manual_seed(seed)
    schedule = horizon()
    # Also under a caller's inference_mode: work on ordinary copies with autograd enabled.
    with torch.inference_mode(False), torch.enable_grad():
        free = [t.detach().clone().requires_grad_(True) for t in latents]
        opt = Adam(free)
        for step in range(1, pending[-1] + 1):
            relax = sga.RELAXATION(temperature(step - 1, schedule), generator)
            loss = objective.loss(free, relax)
            grads = torch.autograd.grad(loss, free)
            for i, (t, g) in enumerate(zip(free, grads)):
                mask = masks[i] if masks is not None else None
                t.grad = g if mask is None else g * mask
            opt.step(step_size(step - 1, lr))
            del loss, grads
            if checked(step, pending):
                candidate = [t.detach().clone() for t in free]
                with torch.no_grad():
                    value = true_loss(candidate)
                if value < best_loss:
                    best, best_loss = candidate, value
            if step == pending[0]:
                pending.pop(0)
                elapsed = time.perf_counter() - t0, time.process_time() - c0
                results.append(Refined(best, *elapsed))
            if bar is not None:
                bar.update(1)
    return results


def refine_latents(
    model,
    pixels: np.ndarray,
    padded: tuple[int, int],
    y: Tensor,
    inv_gain: Tensor,
    lmbda: float,
    budgets: Sequence[int],
    file_loss: Callable[[Tensor, Tensor | None], float],
    *,
    distortion: str,
    tile: int = 0,
    label: str = "effort",
) -> list[tuple[Tensor, Tensor | None, Refined]]:
    """The ``(y, z)`` to code for ``pixels`` (HxWx3 uint8, edge-padded to ``padded``) at each
    of ``budgets`` (steps), with how long the search took to get there.

    ``y`` is the gained forward-pass latent and ``file_loss(y, z)`` the true loss of the file a
    pair codes to (``z`` None: ``h_a(y)``, the plain file). A budget's answer is ``(y, None)``
    unless its refined pair's file is better. An image of at most ``WHOLE_PIXELS`` (padded)
    is optimised in one piece, one search for all budgets, every candidate judged by its real
    file; a larger one tile by tile (``refine_tiles``), one sweep per budget, so that memory
    stays bounded. ``distortion`` is the one searched for: the tune's, else the release's search
    distortion (``file_loss`` must judge by the same).
    """
    budgets = sorted(set(budgets))
    height, width = pixels.shape[:2]
    ph, pw = padded
    tile = tile or TILE
    cores = [(r, c) for r in spans(ph, tile, 64) for c in spans(pw, tile, 64)]
    whole = ph * pw <= WHOLE_PIXELS or len(cores) == 1
    bf16 = steers_in_bf16(y.device)
    total = budgets[-1] if whole else sum(budgets) * len(cores)
    bar = _bar(total, label) if total else None
    out = []
    try:
        if whole:
            x = _window(pixels, 0, ph, 0, pw, y.device)
            objective = objective_for(
                model, x, inv_gain, lmbda, height, width, bf16=bf16, distortion=distortion
            )
            start = objective.start(y)

            def judge(ls: list[Tensor]) -> float:
                return file_loss(*objective.coded(ls))

            for r in refine(objective, start, budgets, judge, bar=bar):
                pair = (y, None) if r.latents is None else objective.coded(r.latents)
                out.append((*pair, r))
            return out
        plain_loss = None
        for budget in budgets:
            t0, c0 = time.perf_counter(), time.process_time()
            if budget <= 0:
                out.append((y, None, Refined(None, 0.0, 0.0)))
                continue
            y_new, z_new = refine_tiles(
                model, pixels, padded, y, inv_gain, lmbda, budget, cores, bf16, bar, distortion
            )
            # The windows' freed activations would otherwise sit under the judging encodes.
            release_freed_memory()
            # The tiles were judged by an estimate; the whole file decides.
            if plain_loss is None:
                plain_loss = file_loss(y, None)
            better = file_loss(y_new, z_new) < plain_loss
            release_freed_memory()
            r = Refined(
                [y_new, z_new] if better else None,
                time.perf_counter() - t0,
                time.process_time() - c0,
            )
            out.append((y_new, z_new, r) if better else (y, None, r))
        return out
    finally:
        if bar is not None:
            bar.close()


def refine_tiles(
    model,
    pixels: np.ndarray,
    padded: tuple[int, int],
    y: Tensor,
    inv_gain: Tensor,
    lmbda: float,
    iterations: int,
    cores: list[tuple[tuple[int, int], tuple[int, int]]],
    bf16: bool,
    bar: Any,
    distortion: str,
) -> tuple[Tensor, Tensor]:
    """Block-coordinate refinement: each tile's latents in turn, the others held fixed.

    A tile's window adds ``HALO`` pixels of context on every side: the synthesis of every pixel
    its latents reach, and the entropy parameters of every latent its hyper-latents reach, are
    computed from real neighbours (already refined ones where the sweep has passed), so the
    tiles optimise one whole-image loss and leave no seams (for MSE, a sum over pixels; for
    MS-SSIM the window's score is an estimate of the image's). Candidates are judged on the window
    by the hard-rounded loss (model likelihoods, 8-bit pixels); memory is that of one window.
    """
    with torch.no_grad():
        y = y.clone()
        z = model.h_a(y)
    for core in cores:
        objective, ys, zs, masks = tile_problem(
            model, pixels, padded, y, z, inv_gain, lmbda, core, distortion=distortion, bf16=bf16
        )

        def estimate(ls: list[Tensor], objective=objective) -> float:
            return float(objective.loss(ls, hard_round, judge=True))

        (r,) = refine(objective, [y[ys], z[zs]], [iterations], estimate, masks=masks, bar=bar)
        if r.latents is not None:
            y[ys], z[zs] = r.latents
        del objective, r
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
    *,
    distortion: str,
    bf16: bool = False,
) -> tuple[Objective, tuple[slice, ...], tuple[slice, ...], list[Tensor]]:
    """One tile's objective on its window, the window's slices of ``y`` and ``z``, and the
    masks of the core's latents within them."""
    height, width = pixels.shape[:2]
    ph, pw = padded
    (r0, r1), (c0, c1) = core
    a0, a1 = max(0, r0 - HALO), min(ph, r1 + HALO)
    b0, b1 = max(0, c0 - HALO), min(pw, c1 + HALO)
    a0 = _judgeable_start(a0, a1, height, distortion)
    b0 = _judgeable_start(b0, b1, width, distortion)
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
    objective = objective_for(model, x, inv_gain, lmbda, vh, vw, bf16=bf16, distortion=distortion)
    return objective, ys, zs, masks


def _judgeable_start(start: int, end: int, side: int, distortion: str) -> int:
    """A window's first row (or column), moved back in steps of ``HYPER`` until MS-SSIM can
    judge what the window holds of the image: an edge tile with 160 valid pixels or fewer
    would otherwise be searched by MSE while its file is judged by MS-SSIM."""
    if not uses_ms_ssim(distortion) or side <= MS_SSIM_MIN_SIDE:
        return start
    latest = (min(end, side) - MS_SSIM_MIN_SIDE - 1) // HYPER * HYPER
    return max(0, min(start, latest))


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
