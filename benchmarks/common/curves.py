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


def live_curve(name: str, entry: dict) -> Curve:
    """A codec's mean points as a curve sorted by bpp; a missing value (null once written to
    JSON) reads as NaN."""
    pts = sorted(entry["points"], key=lambda p: p["bpp"])

    def values(key: str) -> list[float]:
        return [math.nan if p[key] is None else p[key] for p in pts]

    return Curve(
        key=name,
        label=entry["label"],
        bpp=values("bpp"),
        psnr=values("psnr"),
        ms_ssim_db=values("ms_ssim_db"),
    )
