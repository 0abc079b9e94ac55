"""Rate control: find the quality that meets a size, bpp or PSNR target by really encoding.

Quality maps continuously onto the model's rate, and bytes and PSNR grow with it, but not
strictly: the entropy coder's output jumps by a few bytes here and there and PSNR can dip
locally. So the search brackets the target, narrows the bracket by regula falsi (on log bytes,
which are close to linear in quality) with bisection as a safeguard, and finally picks the best
file among *all* it made rather than the last one. A target out of reach ends at the closest
file, flagged as not met.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import CodecError
from ..metrics import bpp

#: Relative tolerance of bpp and size targets (a size target is also never exceeded).
TOLERANCE = 0.02
#: The search stops early once a file is this close to a bpp or size target.
INNER_TOLERANCE = 0.005
#: Qualities are tried on this grid (they are stored as float32 in the header anyway).
QUALITY_DECIMALS = 3
#: A PSNR target's bracket is narrowed to this many quality units, so a quality this much lower
#: than the one chosen would miss the target.
PSNR_QUALITY_STEP = 0.02
MAX_TRIALS = 24
#: Where a PSNR search first looks, then (if every point missed) looks in between: PSNR need not
#: rise with quality everywhere, so one crossing found by stepping out may not be the lowest.
SCAN = (0.0, 25.0, 50.0, 75.0, 100.0)
SCAN_FINE = (12.5, 37.5, 62.5, 87.5)
#: Trials allowed to the costly encoder after a cheap search has located the target.
MAX_REFINE_TRIALS = 8

UNITS = {"bpp": "bpp", "size": "bytes", "psnr": "dB"}


@dataclass(frozen=True)
class Target:
    """What the user asked for: ``kind`` is ``"bpp"``, ``"size"`` (bytes) or ``"psnr"`` (dB)."""

    kind: str
    value: float

    def format(self, value: float) -> str:
        """A value in this target's unit: whole bytes, bpp to 3 decimals, dB to 2."""
        if self.kind == "size":
            return f"{value:.0f} bytes"
        if self.kind == "bpp":
            return f"{value:.3f} bpp"
        return f"{value:.2f} dB"


@dataclass
class Candidate:
    """One trial encode: its quality, file size, PSNR (for PSNR targets) and the encoder's data."""

    quality: float
    nbytes: int
    psnr: float | None = None
    payload: Any = None


@dataclass
class TargetResult:
    """How a target search ended: the value reached, at which quality, and whether it was met.

    ``reachable`` is False when the target lies beyond every file the codec can make (smaller
    than the quality-0 file, larger than the quality-100 one, or a PSNR no quality reaches);
    ``note`` says why a target was missed; ``trials`` counts the encodes the search made.
    """

    kind: str
    target: float
    reached: float
    quality: float
    met: bool
    trials: int
    reachable: bool = True
    note: str = ""

    def __str__(self) -> str:
        t = Target(self.kind, self.target)
        unit = UNITS[self.kind]
        text = f"target {self.target:g} {unit} -> {t.format(self.reached)} "
        text += f"at quality {self.quality:.1f}"
        return text if self.met else f"{text} (target not met: {self.note})"


def _number(name: str, value) -> float:
    if isinstance(value, bool):
        raise CodecError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CodecError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise CodecError(f"{name} must be a positive number, got {value!r}")
    return v


def parse_target(
    target_bpp: float | None = None,
    target_size: int | None = None,
    target_psnr: float | None = None,
) -> Target | None:
    """Validate the target keywords: at most one, each a positive finite number."""
    given = {
        k: v
        for k, v in (
            ("target_bpp", target_bpp),
            ("target_size", target_size),
            ("target_psnr", target_psnr),
        )
        if v is not None
    }
    if len(given) > 1:
        raise CodecError(f"{' and '.join(given)} are mutually exclusive: give one target")
    if not given:
        return None
    name, raw = next(iter(given.items()))
    value = _number(name, raw)
    if name == "target_size":
        if value != int(value):
            raise CodecError(f"target_size must be a whole number of bytes, got {raw!r}")
        return Target("size", float(int(value)))
    return Target(name.removeprefix("target_"), value)


def goal_bytes(target: Target, pixels: int) -> float:
    """The file size a size or bpp target asks for on an image of ``pixels``."""
    return target.value * pixels / 8 if target.kind == "bpp" else target.value


def meets(target: Target, nbytes: int, psnr: float | None, pixels: int) -> bool:
    """Whether a file of ``nbytes`` (and ``psnr``) meets ``target`` on an image of ``pixels``:
    a PSNR at least the target's; a size within ``TOLERANCE`` under it; a bpp within
    ``TOLERANCE`` either side."""
    if target.kind == "psnr":
        return psnr is not None and psnr >= target.value
    ratio = nbytes / goal_bytes(target, pixels)
    return 1 - TOLERANCE <= ratio <= 1 if target.kind == "size" else abs(ratio - 1) <= TOLERANCE


def reached(target: Target, nbytes: int, psnr: float | None, pixels: int) -> float:
    """What a file of ``nbytes`` (and ``psnr``) reaches in ``target``'s unit."""
    if target.kind == "psnr":
        return float(psnr)
    return float(nbytes if target.kind == "size" else bpp(nbytes, pixels))


class _Search:
    """Bracketing and regula falsi over quality, remembering every trial's numbers."""

    def __init__(self, target: Target, pixels: int):
        self.target = target
        self.pixels = pixels
        self.goal = goal_bytes(target, pixels)
        self.seen: dict[float, Candidate] = {}
        self.best: Candidate | None = None
        self.trials = 0

    # -- how a trial compares with the target ---------------------------------------------

    def score(self, c: Candidate) -> float:
        """Signed distance to the target, increasing with quality."""
        if self.target.kind == "psnr":
            return c.psnr - self.target.value
        return math.log(c.nbytes / self.goal)

    def high(self, c: Candidate) -> bool:
        """Whether ``c`` lies on the high-quality side: too big, or PSNR already met."""
        if self.target.kind == "psnr":
            return c.psnr >= self.target.value
        return c.nbytes > self.goal

    def key(self, c: Candidate) -> tuple:
        """Lower is better: the ranking that picks the file to return."""
        if self.target.kind == "psnr":
            if c.psnr >= self.target.value:
                return (0, c.nbytes, c.quality)
            return (1, -c.psnr, c.nbytes)
        if self.target.kind == "size":
            if c.nbytes <= self.goal:
                return (0, self.goal - c.nbytes, c.quality)
            return (1, c.nbytes - self.goal, c.quality)
        return (0, abs(math.log(c.nbytes / self.goal)), c.quality)

    def close_enough(self) -> bool:
        if self.best is None or self.target.kind == "psnr":
            return False
        ratio = self.best.nbytes / self.goal
        if self.target.kind == "size":
            return 1 - INNER_TOLERANCE <= ratio <= 1
        return abs(ratio - 1) <= INNER_TOLERANCE

    # -- trials ---------------------------------------------------------------------------

    def trial(self, evaluate: Callable[[float], Candidate], quality: float) -> Candidate:
        q = round(min(100.0, max(0.0, quality)), QUALITY_DECIMALS)
        if q in self.seen:
            return self.seen[q]
        c = evaluate(q)
        self.trials += 1
        if self.best is None or self.key(c) < self.key(self.best):
            self.best = c
        # Only the best candidate keeps its payload (latents, reconstruction).
        self.seen[q] = Candidate(c.quality, c.nbytes, c.psnr)
        return self.seen[q]

    def run(
        self,
        evaluate: Callable[[float], Candidate],
        start: float,
        step: float,
        max_trials: int,
        scan: bool = False,
    ) -> tuple[Candidate | None, Candidate | None]:
        """Bracket the target, then narrow it; returns the final (low, high) pair.

        The bracket is the lowest crossing on a coarse grid with ``scan``, else it is found by
        stepping out from ``start`` by ``step``, doubling.
        """
        budget = self.trials + max_trials
        if scan:
            lo, hi = self._scan(evaluate, budget)
        else:
            lo, hi = self._bracket(evaluate, start, step, budget)
        if lo is None or hi is None:
            return lo, hi
        # Narrow: regula falsi, bisecting whenever one end has stayed put twice in a row.
        min_width = PSNR_QUALITY_STEP if self.target.kind == "psnr" else 2 * 10**-QUALITY_DECIMALS
        stuck, last_high = 0, None
        while self.trials < budget and not self.close_enough():
            width = hi.quality - lo.quality
            if width <= min_width:
                break
            s_lo, s_hi = self.score(lo), self.score(hi)
            if stuck >= 2 or not (math.isfinite(s_lo) and math.isfinite(s_hi)):
                q = lo.quality + width / 2
            else:
                q = lo.quality + width * (-s_lo) / (s_hi - s_lo)
                q = min(max(q, lo.quality + 0.05 * width), hi.quality - 0.05 * width)
            c = self.trial(evaluate, q)
            if c.quality in (lo.quality, hi.quality):
                break  # the grid is exhausted between the two ends
            moved_high = self.high(c)
            if moved_high:
                hi = c
            else:
                lo = c
            stuck = stuck + 1 if moved_high == last_high else 0
            last_high = moved_high
        return lo, hi

    def _bracket(
        self, evaluate: Callable[[float], Candidate], start: float, step: float, budget: int
    ) -> tuple[Candidate | None, Candidate | None]:
        c = self.trial(evaluate, start)
        lo, hi = (None, c) if self.high(c) else (c, None)
        while (lo is None or hi is None) and self.trials < budget:
            if hi is None:
                if lo.quality >= 100:
                    break
                c = self.trial(evaluate, lo.quality + step)
            else:
                if hi.quality <= 0:
                    break
                c = self.trial(evaluate, hi.quality - step)
            if self.high(c):
                hi = c
            else:
                lo = c
            step *= 2
        return lo, hi

    def _scan(
        self, evaluate: Callable[[float], Candidate], budget: int
    ) -> tuple[Candidate | None, Candidate | None]:
        """The lowest pair of grid neighbours across the target, if any."""
        for grid in (SCAN, SCAN_FINE):
            for q in grid:
                if self.trials < budget:
                    self.trial(evaluate, q)
            points = [self.seen[q] for q in sorted(self.seen)]
            for a, b in zip(points, points[1:]):
                if not self.high(a) and self.high(b):
                    return a, b
            if any(self.high(p) for p in points):
                break  # met from quality 0 up: nothing lower to find
        return None, None

    def slope(self, lo: Candidate | None, hi: Candidate | None) -> float | None:
        if lo is None or hi is None or hi.quality == lo.quality:
            return None
        s = (self.score(hi) - self.score(lo)) / (hi.quality - lo.quality)
        return s if math.isfinite(s) and s > 0 else None

    # -- the answer -----------------------------------------------------------------------

    def result(self) -> TargetResult:
        best, t = self.best, self.target
        met = meets(t, best.nbytes, best.psnr, self.pixels)
        reachable, note = (True, "") if met else self._why()
        return TargetResult(
            kind=t.kind,
            target=t.value,
            reached=reached(t, best.nbytes, best.psnr, self.pixels),
            quality=best.quality,
            met=met,
            trials=self.trials,
            reachable=reachable,
            note=note,
        )

    def _why(self) -> tuple[bool, str]:
        """Whether a missed target was within the codec's range, and why it was missed."""
        t = self.target
        ends = {q: c for q, c in self.seen.items() if q in (0.0, 100.0)}
        if t.kind == "psnr":
            if ends:
                return False, "no quality tried reaches it"
            return True, "the search ran out of trials"

        def size(c: Candidate) -> str:
            return t.format(reached(t, c.nbytes, None, self.pixels))

        if 0.0 in ends and self.high(ends[0.0]):
            return False, f"the smallest file (quality 0) is {size(ends[0.0])}"
        if 100.0 in ends and not self.high(ends[100.0]):
            return False, f"the largest file (quality 100) is {size(ends[100.0])}"
        return True, f"no quality gives a file within {TOLERANCE:.0%} of the target"


def search(
    evaluate: Callable[[float], Candidate],
    target: Target,
    pixels: int,
    refine: Callable[[float], Candidate] | None = None,
) -> tuple[Candidate, TargetResult]:
    """The best trial for ``target`` and how close it came.

    ``evaluate(quality)`` encodes at a quality and returns a ``Candidate`` (with ``psnr`` set
    for PSNR targets). With ``refine``, a costlier encoder (higher effort), the target is first
    located with the cheap ``evaluate``, then a few ``refine`` trials start from there; those are
    the answer unless none meets the target and the cheap encoder's best does. The costlier
    encoder may jump past the target's window between neighbouring qualities (it keeps a bigger
    file when that lowers the rate-distortion loss), and a met target is what was asked for.
    """
    cheap = _Search(target, pixels)
    scan = target.kind == "psnr"
    lo, hi = cheap.run(evaluate, start=50.0, step=50.0, max_trials=MAX_TRIALS, scan=scan)
    if refine is None:
        return cheap.best, cheap.result()
    slope = cheap.slope(lo, hi)
    costly = _Search(target, pixels)
    start = cheap.best.quality
    step = 2.0
    if slope is not None:
        # Step by roughly the distance the costly encoder's first trial says is left.
        costly.trial(refine, start)
        first = costly.seen[round(start, QUALITY_DECIMALS)]
        step = max(abs(costly.score(first)) / slope * 1.25, 0.05)
    lo, hi = costly.run(refine, start=start, step=step, max_trials=MAX_REFINE_TRIALS)
    result = costly.result()
    fallback = cheap.result()
    if not result.met and fallback.met:
        fallback.trials += costly.trials
        return cheap.best, fallback
    result.trials += cheap.trials
    return costly.best, result
