"""The environment variables fastconv reads, each checked in one place.

==========================  ==================================================
``FASTCONV_NUM_THREADS``    default thread count of the kernels (an int >= 1)
``FASTCONV_ISA``            cap on the SIMD level: ``generic``, ``avx2`` or
                            ``avx512`` (read by the C runtime when the extension
                            loads; checked here so a typo is not ignored)
``FASTCONV_TUNE_FILE``      the tuning table (``fastconv tune``); empty: none
==========================  ==================================================

A bad value raises :class:`EnvironmentVariableError` (a ``ValueError``) naming
the variable, the value and what is expected, at the first kernel call (and at
the start of every ``fastconv`` command), never a silent fallback.
"""

from __future__ import annotations

import os

ISA_NAMES = ("generic", "avx2", "avx512")


class EnvironmentVariableError(ValueError):
    """An environment variable fastconv reads holds a value it cannot use."""


def _bad(name, value, expected):
    return EnvironmentVariableError(
        f"environment variable {name}={value!r} is not valid: expected {expected} "
        f"(or unset it)"
    )


def num_threads():
    """``FASTCONV_NUM_THREADS`` as an int >= 1, or None when unset or empty."""
    value = os.environ.get("FASTCONV_NUM_THREADS")
    if value is None or not value.strip():
        return None
    try:
        n = int(value.strip())
    except ValueError:
        raise _bad("FASTCONV_NUM_THREADS", value, "a positive integer such as 2") from None
    if n < 1:
        raise _bad("FASTCONV_NUM_THREADS", value, "a positive integer such as 2")
    return n


def isa_cap():
    """``FASTCONV_ISA`` (one of :data:`ISA_NAMES`), or None when unset or empty."""
    value = os.environ.get("FASTCONV_ISA")
    if value is None or not value.strip():
        return None
    if value not in ISA_NAMES:
        raise _bad("FASTCONV_ISA", value, "one of " + ", ".join(ISA_NAMES))
    return value


def check():
    """Check every variable above; raise :class:`EnvironmentVariableError` on the first
    bad one."""
    num_threads()
    isa_cap()
