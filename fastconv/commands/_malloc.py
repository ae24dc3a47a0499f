"""glibc heap tuning for the training process (``fastconv train``)."""

from __future__ import annotations

import ctypes
import os

__all__ = ["keep_freed_memory"]

#: glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(limit=32 << 20):
    """For the training process only: ask glibc to keep freed blocks up to ``limit``
    bytes (32 MiB, the largest threshold every glibc accepts) in the heap instead of
    returning them to the system. A training step
    allocates and frees the same few-MiB activations every step; returned to the
    system, each comes back as fresh pages, one page fault per 4 KiB, every step
    (6% of ``fastconv train``'s time on the development machine). A no-op off glibc
    or when the user set MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ (theirs wins).
    Returns True when the setting was made."""
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # trim threshold first: setting either fixes both (no more dynamic thresholds)
    return bool(mallopt(M_TRIM_THRESHOLD, 4 * limit)) and bool(mallopt(M_MMAP_THRESHOLD, limit))
