"""Quality and size metrics, computed as CompressAI's evaluation does (8-bit RGB, per image).

PSNR and MS-SSIM are lcodec's own (codec/metrics.py, which ``lcodec compare`` uses too); this
module adds the file size as bits per pixel and MS-SSIM on the dB scale.
"""

from __future__ import annotations

import math

from codec.metrics import MS_SSIM_MIN_SIDE, ms_ssim, psnr

__all__ = ["MS_SSIM_MIN_SIDE", "bpp", "ms_ssim", "ms_ssim_db", "psnr"]


def bpp(num_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of a whole file: every byte counts, headers and containers included."""
    return 8.0 * num_bytes / (height * width)


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on the dB scale used for plots and BD-rate: -10 log10(1 - value)."""
    if value is None or math.isnan(value):
        return math.nan
    return math.inf if value >= 1 else -10.0 * math.log10(1.0 - value)
