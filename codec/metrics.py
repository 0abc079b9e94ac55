"""Quality metrics of a decoded image, as the benchmarks and CompressAI's evaluation compute them
(8-bit RGB, per image): ``lcodec compare``, PSNR targets and the RD harness share them. The
distortions a release is trained for, and the effort search minimises, live here too.

MS-SSIM uses five scales with an 11-pixel window, so both sides of the image must exceed 160
pixels. Smaller images get NaN rather than a number from a different
(fewer-scale) metric that would not be comparable with published MS-SSIM figures.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and torch load on first use: the CLI's options import this module
    import numpy as np
    import torch

#: MS-SSIM's Gaussian window: its side and σ, as pytorch_msssim uses them.
MS_SSIM_WINDOW, MS_SSIM_SIGMA = 11, 1.5
#: Five-scale MS-SSIM's exponents (Wang, Simoncelli and Bovik 2003), as pytorch_msssim uses them.
MS_SSIM_SCALE_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: The smallest side (exclusive) that five-scale MS-SSIM accepts: the window must fit the
#: coarsest scale.
MS_SSIM_MIN_SIDE = (MS_SSIM_WINDOW - 1) * 2 ** (len(MS_SSIM_SCALE_WEIGHTS) - 1)


def squared_error(a: np.ndarray, b: np.ndarray, rows: int = 256) -> int:
    """Sum of squared differences of two uint8 images, exact, in bands of ``rows`` rows: no
    full-size float copies, so memory stays bounded on any image."""
    import numpy as np

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
#: The distortions a release can be trained for (its manifest's ``distortion``) or a file
#: searched by, each a weighted mean of 255²·MSE and the MS-SSIM term on their common scale:
#: MSE's weight here, the MS-SSIM term's the rest. ``mse+ms-ssim`` weighs them equally, one
#: release meant to score well on both; ``3mse+ms-ssim`` gives MSE three times MS-SSIM's weight.
MSE_SHARES = {"mse": 1.0, "ms-ssim": 0.0, "mse+ms-ssim": 0.5, "3mse+ms-ssim": 0.75}
DISTORTIONS = tuple(MSE_SHARES)
#: The metrics a user can tune a file for (``--tune``) and the distortion each is judged by: the
#: effort search minimises λ times it + bpp, whatever the release was trained on.
TUNES = {"psnr": "mse", "ms-ssim": "ms-ssim"}
#: What effort searches a release by without a tune, where that is not what it was trained on:
#: a release trained for both metrics keeps a wide lead in MS-SSIM and trails in PSNR, so its
#: search leans to MSE (docs/EFFORT.md, "Leaning the search to PSNR").
SEARCHED = {"mse+ms-ssim": "3mse+ms-ssim"}


def searched_by(trained: str) -> str:
    """The distortion effort minimises for a release trained for ``trained``, without a tune."""
    return SEARCHED.get(trained, trained)


def ms_ssim_term(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image 1 - MS-SSIM of batches in [0, 1], on the scale the lambdas are written for
    (255^2 * MSE): what a release tuned for MS-SSIM was trained on, and what the effort search
    minimises for it."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    # float32: bf16 autocast would round the small differences that decide the score
    score = _ms_ssim(x_hat.float(), x.float(), data_range=1.0, size_average=False)
    return MS_SSIM_WEIGHT * (1 - score)


def distortion_term(distortion: str, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image distortion of batches in [0, 1] on the scale the lambdas are written for
    (255^2 * MSE): what training and the effort search minimise for a release."""
    share = _share(distortion)
    if share == 0:
        return ms_ssim_term(x_hat, x)
    mse = 255**2 * (x_hat - x).square().flatten(1).mean(1)
    return mse if share == 1 else share * mse + (1 - share) * ms_ssim_term(x_hat, x)


def _share(distortion: str) -> float:
    if distortion not in MSE_SHARES:
        raise ValueError(f"unknown distortion {distortion!r}")
    return MSE_SHARES[distortion]


def uses_ms_ssim(distortion: str) -> bool:
    """Whether judging by ``distortion`` needs five-scale MS-SSIM (and so a side above 160)."""
    return _share(distortion) < 1


def measurable(distortion: str, height: int, width: int) -> str:
    """The distortion an image of this size can be judged by: MS-SSIM needs five scales, so a
    smaller image falls back to MSE, the distortion the ladder's lambdas were set for."""
    small = min(height, width) <= MS_SSIM_MIN_SIDE
    return "mse" if uses_ms_ssim(distortion) and small else distortion


def file_rd_loss(
    original: np.ndarray,
    reconstruction: np.ndarray,
    nbytes: int,
    lmbda: float,
    distortion: str = "mse",
) -> float:
    """λ·D + bpp of a real file, D the weighted mean of 255²·MSE and MS_SSIM_WEIGHT·(1 −
    MS-SSIM) that ``distortion`` names (``MSE_SHARES``): the training objective, measured on
    what users get (the trainer's own ``rd_loss`` is the same objective on likelihoods,
    codec/train/loop.py)."""
    rate = bpp(nbytes, original.shape[0] * original.shape[1])
    judged = measurable(distortion, *original.shape[:2])
    share = _share(judged)
    d = 0.0  # the judged distortions' weighted mean, on the scale of 255²·MSE
    if share > 0:
        d += share * squared_error(original, reconstruction) / original.size
    if share < 1:
        d += (1 - share) * MS_SSIM_WEIGHT * (1 - ms_ssim(original, reconstruction))
    return lmbda * d + rate


def ms_ssim(a: np.ndarray, b: np.ndarray, rows: int = 256) -> float:
    """MS-SSIM of two uint8 images (H x W x C), or NaN when the image is too small for five
    scales: pytorch_msssim's score (11-pixel Gaussian windows, σ 1.5, no padding), computed one
    channel and ``rows`` rows at a time so that memory stays bounded on any image (the effort
    search judges whole files of a release tuned for MS-SSIM by it)."""
    if min(a.shape[:2]) <= MS_SSIM_MIN_SIDE:
        return math.nan
    import numpy as np
    import torch
    import torch.nn.functional as F

    offsets = torch.arange(MS_SSIM_WINDOW, dtype=torch.float32) - MS_SSIM_WINDOW // 2
    g = torch.exp(-(offsets**2) / (2 * MS_SSIM_SIGMA**2))
    g = g / g.sum()
    coarsest = len(MS_SSIM_SCALE_WEIGHTS) - 1
    scores = []
    with torch.no_grad():
        for c in range(a.shape[2]):
            x = torch.from_numpy(a[..., c].astype(np.float32))[None, None]
            y = torch.from_numpy(b[..., c].astype(np.float32))[None, None]
            terms = []
            for level in range(coarsest + 1):
                ssim, cs = _ssim_means(x, y, g, rows)
                terms.append(max(ssim if level == coarsest else cs, 0.0))
                if level < coarsest:
                    padding = [s % 2 for s in x.shape[2:]]
                    x = F.avg_pool2d(x, 2, padding=padding)
                    y = F.avg_pool2d(y, 2, padding=padding)
            scores.append(math.prod(t**w for t, w in zip(terms, MS_SSIM_SCALE_WEIGHTS)))
    return sum(scores) / len(scores)


def _ssim_means(
    x: torch.Tensor, y: torch.Tensor, g: torch.Tensor, rows: int
) -> tuple[float, float]:
    """Means of the SSIM map and of the contrast-structure map of one scale, band by band."""
    import torch
    import torch.nn.functional as F

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = g.numel()
    out_h, out_w = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    ssim_sum = cs_sum = 0.0
    for r in range(0, out_h, rows):
        end = min(r + rows, out_h)
        xb, yb = x[..., r : end + k - 1, :], y[..., r : end + k - 1, :]
        maps = torch.cat([xb, yb, xb * xb, yb * yb, xb * yb], 1)
        maps = F.conv2d(maps, g.view(1, 1, k, 1).expand(5, 1, k, 1), groups=5)
        maps = F.conv2d(maps, g.view(1, 1, 1, k).expand(5, 1, 1, k), groups=5)
        mu1, mu2, xx, yy, xy = maps.unbind(1)
        mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
        cs_map = (2 * (xy - mu1_mu2) + c2) / ((xx - mu1_sq) + (yy - mu2_sq) + c2)
        ssim_map = (2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1) * cs_map
        ssim_sum += float(ssim_map.sum(dtype=torch.float64))
        cs_sum += float(cs_map.sum(dtype=torch.float64))
    n = out_h * out_w
    return ssim_sum / n, cs_sum / n
