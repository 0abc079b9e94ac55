"""Wall-clock timing shared by the speed harnesses."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> tuple[Any, float]:
    """One untimed warm-up, then the median wall time of ``repeats`` synchronized runs."""
    result = fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return result, statistics.median(times)
