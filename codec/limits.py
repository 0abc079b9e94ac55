"""The pixel budget: the largest image lcodec agrees to code or decode.

Coding costs time and memory in proportion to the image's declared size, not to the size of
its file: a PNG of a hundred bytes can declare 16000x16000 pixels, and so can a small ``.lcz``.
As with Pillow's ``MAX_IMAGE_PIXELS``, a module-level default (``MAX_IMAGE_PIXELS`` here) can be
overridden per call (``max_pixels=``) or on the command line (``--max-pixels``). The budget is
checked from the header, before any pixel is decoded, any tensor allocated or any model loaded.
docs/LIMITS.md gives the time and memory per megapixel, to choose a budget by.
"""

from __future__ import annotations

from numbers import Integral

from .bitstream import MAX_PIXELS
from .errors import CodecError

#: Pillow's own default (a quarter of a GiB of 3-byte pixels): the two guards agree unless
#: someone changes one of them. Set this, or pass ``max_pixels=``, for a lower budget.
MAX_IMAGE_PIXELS: int = 89_478_485


def pixel_budget(max_pixels: int | None = None) -> int:
    """``max_pixels``, or ``MAX_IMAGE_PIXELS`` when it is None, refused unless 1..2**28."""
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if isinstance(limit, bool) or not isinstance(limit, Integral) or not 1 <= limit <= MAX_PIXELS:
        raise CodecError(f"max_pixels must be a whole number from 1 to {MAX_PIXELS}, got {limit!r}")
    return int(limit)


def check_budget(
    width: int, height: int, max_pixels: int | None = None, setting: str = "max_pixels"
) -> None:
    """Refuse an image of more pixels than the budget; the message names the ``setting``."""
    if width * height > pixel_budget(max_pixels):
        raise CodecError(f"{width}x{height} is {over_budget(width * height, max_pixels, setting)}")


def over_budget(pixels: int, max_pixels: int | None = None, setting: str = "max_pixels") -> str:
    """What to say of an image of ``pixels`` over the budget: the limit and how to set it."""
    return f"{pixels:,} pixels, over the pixel budget of {pixel_budget(max_pixels):,} ({setting})"
