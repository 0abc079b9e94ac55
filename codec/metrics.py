"""Quality metrics of a decoded image, as the benchmarks and CompressAI's evaluation compute them
(8-bit RGB, per image): ``lcodec compare``, PSNR targets and the RD harness share them.

MS-SSIM uses five scales with an 11-pixel window, so ``pytorch_msssim`` needs both sides of the
image to exceed 160 pixels. Smaller images get NaN rather than a number from a different
(fewer-scale) metric that would not be comparable with published MS-SSIM figures.
"""

from __future__ import annotations

import math

import numpy as np

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


def file_rd_loss(
    original: np.ndarray, reconstruction: np.ndarray, nbytes: int, lmbda: float
) -> float:
    """λ·255²·MSE + bpp of a real file: the training objective, measured on what users get
    (the trainer's own ``rd_loss`` is the same objective on likelihoods, codec/train/loop.py)."""
    mse = squared_error(original, reconstruction) / original.size / 255**2
    return lmbda * 255**2 * mse + bpp(nbytes, original.shape[0] * original.shape[1])


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
