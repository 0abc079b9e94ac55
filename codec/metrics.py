"""Quality metrics of a decoded image, as the benchmarks and CompressAI's evaluation compute them
(8-bit RGB, per image): ``lcodec compare``, PSNR targets and the RD harness share them. The
distortions a release is trained for, and the effort search minimises, live here too.

MS-SSIM uses five scales with an 11-pixel window, so ``pytorch_msssim`` needs both sides of the
image to exceed 160 pixels. Smaller images get NaN rather than a number from a different
(fewer-scale) metric that would not be comparable with published MS-SSIM figures.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

#: The smallest side (exclusive) that five-scale MS-SSIM with an 11-pixel window accepts.
MS_SSIM_MIN_SIDE = (11 - 1) * 2**4


def squared_error(a: np.ndarray, b: np.ndarray, rows: int = 256) -> int:
    """Sum of squared differences of two uint8 images, exact, in bands of ``rows`` rows: no
    full-size float copies, so memory stays bounded on any image."""
    total = 0
    for r in range(0, a.shape[0], rows):
        diff = a[r : r + rows].astype(np.int32) - b[r : r + rows]
        total += int(np.square(diff, dtype=np.int64).sum())
    return total


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over all values of two uint8 images (inf when they are identical)."""
    mse = squared_error(a, b) / a.size
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def bpp(nbytes: int, pixels: int) -> float:
    """Bits per pixel of a file of ``nbytes`` bytes holding an image of ``pixels`` pixels."""
    return 8 * nbytes / pixels


#: Puts 1 - MS-SSIM on the scale of 255^2 * MSE: the ratio of the two distortions' slopes
#: along an MSE release's RD curve (docs/TRAINING.md), so that each rung of the MSE ladder keeps
#: about its rate.
MS_SSIM_WEIGHT = 1600.0
#: The distortions a release can be tuned for (its manifest's ``distortion``).
DISTORTIONS = ("mse", "ms-ssim")


def ms_ssim_term(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image 1 - MS-SSIM of batches in [0, 1], on the scale the lambdas are written for
    (255^2 * MSE): what a release tuned for MS-SSIM was trained on, and what the effort search
    minimises for it."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    # float32: bf16 autocast would round the small differences that decide the score
    score = _ms_ssim(x_hat.float(), x.float(), data_range=1.0, size_average=False)
    return MS_SSIM_WEIGHT * (1 - score)


def measurable(distortion: str, height: int, width: int) -> str:
    """The distortion an image of this size can be judged by: MS-SSIM needs five scales, so a
    smaller image falls back to MSE, the distortion the ladder's lambdas were set for."""
    if distortion not in DISTORTIONS:
        raise ValueError(f"unknown distortion {distortion!r}")
    small = min(height, width) <= MS_SSIM_MIN_SIDE
    return "mse" if distortion == "ms-ssim" and small else distortion


def file_rd_loss(
    original: np.ndarray,
    reconstruction: np.ndarray,
    nbytes: int,
    lmbda: float,
    distortion: str = "mse",
) -> float:
    """λ·255²·MSE + bpp (or λ·MS_SSIM_WEIGHT·(1 − MS-SSIM) + bpp, for a release tuned for
    MS-SSIM) of a real file: the training objective, measured on what users get (the trainer's
    own ``rd_loss`` is the same objective on likelihoods, codec/train/loop.py)."""
    rate = bpp(nbytes, original.shape[0] * original.shape[1])
    if measurable(distortion, *original.shape[:2]) == "ms-ssim":
        return lmbda * MS_SSIM_WEIGHT * (1 - ms_ssim(original, reconstruction)) + rate
    mse = squared_error(original, reconstruction) / original.size / 255**2
    return lmbda * 255**2 * mse + rate


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM of two uint8 RGB images, or NaN when the image is too small for five scales."""
    if min(a.shape[:2]) <= MS_SSIM_MIN_SIDE:
        return math.nan
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    def tensor(x: np.ndarray) -> torch.Tensor:  # a copy: Pillow's arrays are read-only
        return torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1)[None]

    with torch.no_grad():
        return float(_ms_ssim(tensor(a), tensor(b), data_range=255))
