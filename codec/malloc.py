"""glibc's malloc tuned for a process that codes images: freed activations are reused.

Above its mmap threshold (128 KB, rising by itself to at most 32 MB) glibc serves each block
with fresh pages from the kernel, and every page faults and is zeroed on first touch. An encode
allocates and frees dozens of 10-50 MB activations, so with the defaults about a sixth of its
time goes to page faults. The command line owns its process and raises the thresholds; the
library leaves the allocator of a process it does not own alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


#: Blocks above this still come from (and go back to) the kernel: a 768x512 photo's largest
#: activation is 50 MB, a large image's tiles make 100 MB ones, and keeping those in the heap
#: raised a 6000x4000 encode's peak RSS from 1.6 to 2.0 GiB.
LIMIT = 64 << 20


def _glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") else None


def release_freed_memory() -> bool:
    """Hand the heap's free pages back to the kernel (glibc ``malloc_trim``), after a phase
    whose large freed blocks the next phase will not reuse, so that its peak does not stack
    on them. False where the C library is not glibc."""
    libc = _glibc()
    if libc is None or not hasattr(libc, "malloc_trim"):
        return False
    libc.malloc_trim(0)
    return True


def reuse_freed_memory(limit: int = LIMIT) -> bool:
    """Serve blocks up to ``limit`` bytes from the heap and keep freed ones for reuse.

    Returns False where the C library has no glibc ``mallopt`` (musl, macOS, Windows).
    """
    libc = _glibc()
    # Only glibc's mallopt takes these parameter numbers.
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, limit)) and bool(mallopt(_M_TRIM_THRESHOLD, limit))
