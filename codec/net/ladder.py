"""The rate ladder: the lambdas one set of weights is trained for, and quality's place on it.

Torch-free, so that the command line can show the training defaults without importing torch.
"""

from __future__ import annotations

import math

from ..errors import CodecError

#: MSE lambdas of the rate ladder, low rate first: CompressAI's zoo values (its qualities 1–6)
#: with two lower rungs, so that quality 0 reaches about 0.15 bpp, and a top rung above its
#: 0.0932: each training stage lowers every rung's rate, and quality 100 must stay above 1.2 bpp.
DEFAULT_LAMBDAS: tuple[float, ...] = (
    0.00045,
    0.0009,
    0.0018,
    0.0035,
    0.0067,
    0.0130,
    0.0250,
    0.0483,
    0.13,
)


def quality_to_rate(quality: float, levels: int) -> float:
    """Quality 0..100 maps linearly onto the rate ladder, which is log-spaced in lambda."""
    try:
        q = float(quality)
    except (TypeError, ValueError):
        raise CodecError(f"quality must be a number, got {quality!r}") from None
    if not math.isfinite(q) or not 0 <= q <= 100:
        raise CodecError(f"quality must be between 0 and 100, got {quality}")
    return q / 100 * (levels - 1)
