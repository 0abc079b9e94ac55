"""The one shape every RD curve takes, live or published, for tables and plots."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Curve:
    """Mean points of one codec or method, sorted by bpp; NaN where a metric is missing."""

    key: str
    label: str
    published: bool = False
    bpp: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    ms_ssim_db: list[float] = field(default_factory=list)

    @property
    def display(self) -> str:
        """The legend and table label; published figures are always marked as such."""
        return f"{self.label} (published)" if self.published else self.label


#: The codec the RD harnesses measure everything against.
SUBJECT = "lcodec"


def sibling(name: str) -> bool:
    """Another of lcodec's own curves (``lcodec-ms-ssim``): in the report's tables beside the
    competitors, but not among the codecs whose BD-rates ``progress`` tracks over training."""
    return name.startswith(SUBJECT + "-")


def live_curve(name: str, entry: dict) -> Curve:
    """A codec's mean points as a curve sorted by bpp; a missing value (null once written to
    JSON) reads as NaN."""
    keys = ("bpp", "psnr", "ms_ssim_db")
    rows = [tuple(math.nan if p[k] is None else p[k] for k in keys) for p in entry["points"]]
    rows.sort(key=lambda r: (math.isnan(r[0]), r[0]))
    bpp, psnr, ms = (list(col) for col in zip(*rows)) if rows else ([], [], [])
    return Curve(key=name, label=entry["label"], bpp=bpp, psnr=psnr, ms_ssim_db=ms)
