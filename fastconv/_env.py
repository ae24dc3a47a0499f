"""The environment variables fastconv reads, each checked in one place.

==========================  ==================================================
``FASTCONV_NUM_THREADS``    default thread count of the kernels (an int >= 1)
``FASTCONV_ISA``            cap on the SIMD level: ``generic``, ``avx2`` or
                            ``avx512`` (read by the C runtime when the extension
                            loads; checked here so a typo is not ignored)
``FASTCONV_TUNE_FILE``      the tuning table (``fastconv tune``); empty: none
``FASTCONV_DATA``           the dataset cache folder (:mod:`fastconv.data`)
==========================  ==================================================

fastconv also *sets* two variables of other libraries when the user has not set
them, at ``import fastconv``, before the libraries read them
(:func:`set_runtime_defaults`): ``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP threads
sleep instead of spinning) and, when NumPy's OpenBLAS is not loaded yet,
``OPENBLAS_THREAD_TIMEOUT`` (how long idle OpenBLAS threads spin after a BLAS
call before they sleep: 2**n CPU cycles; see docs/performance.md).

A bad value raises :class:`EnvironmentVariableError` (a ``ValueError``) naming
the variable, the value and what is expected, at the first kernel call (the
values) and at the start of every ``fastconv`` command (the values and the
paths: ``check(paths=True)``), never a silent fallback. The library itself does
not check the paths: a tuning file that cannot be read only means "no tuning"
(:mod:`fastconv.tune`), and a data folder that cannot be used is reported by
the loader that needs it.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def _nearest_existing(path):
    while not os.path.lexists(path) and path.parent != path:
        path = path.parent
    return path


def tune_file():
    """``FASTCONV_TUNE_FILE`` as a Path, or None when unset or empty (the cache is off).
    It must name a file, not a folder, and not sit under an existing file."""
    value = os.environ.get("FASTCONV_TUNE_FILE")
    if value is None or not value.strip():
        return None
    path = Path(value)
    if path.is_dir():
        raise _bad("FASTCONV_TUNE_FILE", value, "the path of a file, not a folder "
                   "(e.g. ~/.cache/fastconv/tune.json), or empty to turn the tuning cache off")
    if not _nearest_existing(path.parent).is_dir():
        raise _bad("FASTCONV_TUNE_FILE", value, "a file in a folder (a part of the path is a file)")
    return path


def data_dir():
    """``FASTCONV_DATA`` as a Path, or None when unset or empty. It must be a folder or
    not exist yet (then its nearest existing ancestor must be a folder)."""
    value = os.environ.get("FASTCONV_DATA")
    if not value:
        return None
    path = Path(value).expanduser()
    if not _nearest_existing(path).is_dir():
        raise _bad("FASTCONV_DATA", value, "a folder (or a folder to create), not a file")
    return path


#: fastconv's default for OPENBLAS_THREAD_TIMEOUT: OpenBLAS's idle threads spin 2**16
#: cycles (about 25 us) after a call instead of OpenBLAS's 2**28 (about 0.1 s).
OPENBLAS_TIMEOUT_DEFAULT = "16"


def openblas_thread_timeout():
    """``OPENBLAS_THREAD_TIMEOUT`` as a string (as OpenBLAS reads it), or None when unset."""
    return os.environ.get("OPENBLAS_THREAD_TIMEOUT")


def set_runtime_defaults(environ=None, blas_loaded=False):
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless it or ``GOMP_SPINCOUNT`` is set, and
    ``OPENBLAS_THREAD_TIMEOUT`` (:data:`OPENBLAS_TIMEOUT_DEFAULT`) unless it is set or
    OpenBLAS is already loaded (``blas_loaded``: it reads the variable only when it
    loads). ``environ``: the mapping to change (default ``os.environ``). Returns the
    names set."""
    env = os.environ if environ is None else environ
    done = []
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
        done.append("OMP_WAIT_POLICY")
    if "OPENBLAS_THREAD_TIMEOUT" not in env and not blas_loaded:
        env["OPENBLAS_THREAD_TIMEOUT"] = OPENBLAS_TIMEOUT_DEFAULT
        done.append("OPENBLAS_THREAD_TIMEOUT")
    return done


def check(paths=False):
    """Check every variable above; raise :class:`EnvironmentVariableError` on the first
    bad one. ``paths``: also the variables that name files and folders (what the
    ``fastconv`` command does at its start)."""
    num_threads()
    isa_cap()
    if paths:
        tune_file()
        data_dir()
