"""Option types shared by every command (``lcodec`` and ``train``): torch-free, so that a bad
value is a usage error (exit status 2) before anything loads."""

from __future__ import annotations

import math
import re

import click

#: The devices an option may name; ``auto`` only where the command picks one itself.
DEVICES = r"cpu|cuda(:\d+)?"


class Number(click.ParamType):
    """A finite number in a range, refused in words (``'abc' is not a quality from 0 to 100``)
    where click's own ranges say "not a valid float range" and let ``nan`` through."""

    def __init__(
        self,
        what: str,
        lo: float,
        hi: float | None = None,
        whole: bool = False,
        lo_open: bool = False,
        hi_open: bool = False,
    ):
        self.what, self.lo, self.hi, self.whole = what, lo, hi, whole
        self.lo_open, self.hi_open = lo_open, hi_open
        self.name = "integer" if whole else "float"

    def _in_range(self, number: float) -> bool:
        if isinstance(number, float) and not math.isfinite(number):
            return False
        above = number > self.lo if self.lo_open else number >= self.lo
        if self.hi is None:
            return above
        return above and (number < self.hi if self.hi_open else number <= self.hi)

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float | int:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(value) if self.whole else float(value)
            except (TypeError, ValueError):
                number = None
        if number is None or not self._in_range(number):
            self.fail(f"{value!r} is not {self.what}", param, ctx)
        return number


def device(auto: bool = True):
    """A ``--device`` callback: ``cpu``, ``cuda``, ``cuda:N`` (and ``auto`` where allowed)."""
    allowed = f"auto|{DEVICES}" if auto else DEVICES
    words = "auto, cpu, cuda or cuda:N" if auto else "cpu, cuda or cuda:N"

    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        if re.fullmatch(allowed, value):
            return value
        raise click.BadParameter(f"{value!r}: use {words}")

    return check
