"""Peak memory of one call: sampled process RSS on CPU, the allocator's peak on CUDA.

``ru_maxrss`` is a high-water mark for the whole process and can never be reset, and
``tracemalloc`` does not see torch's native allocations, so on CPU a thread samples the
resident set size while the call runs, after asking glibc to return freed memory so that the
call's own growth shows. Very short spikes between two samples can be missed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable
from typing import Any

#: Seconds between two RSS samples.
INTERVAL = 0.001


def _release_freed_memory() -> None:
    """Hand memory that glibc keeps after frees back to the OS, so RSS growth is visible."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: RSS deltas may then undercount reused memory


def _measure_rss(fn: Callable[[], Any]) -> tuple[Any, int, int]:
    import psutil

    proc = psutil.Process()
    _release_freed_memory()
    before = proc.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            done.wait(INTERVAL)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        result = fn()
    finally:
        done.set()
        t.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return result, peak[0], peak[0] - before


def _measure_cuda(fn: Callable[[], Any], device) -> tuple[Any, int, int]:
    import torch

    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    result = fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return result, peak, peak - before


def peak_memory(fn: Callable[[], Any], device) -> tuple[Any, int, int]:
    """Run ``fn``; return its result, the peak bytes, and the peak above the level before.

    On CUDA the figures are ``torch.cuda.max_memory_allocated`` (tensors on the device); on
    CPU they are the process's resident set size.
    """
    if getattr(device, "type", str(device)) == "cuda":
        return _measure_cuda(fn, device)
    return _measure_rss(fn)


def describe(device) -> str:
    """What ``peak_memory`` measures on ``device``, for the report."""
    if getattr(device, "type", str(device)) == "cuda":
        return "torch.cuda.max_memory_allocated during the call (device tensors)"
    return f"process RSS sampled every {INTERVAL * 1000:g} ms with psutil during the call"
