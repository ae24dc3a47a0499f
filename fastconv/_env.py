"""The environment variables fastconv reads, each checked in one place.

==========================  ==================================================
``FASTCONV_NUM_THREADS``    default thread count of the kernels (an int >= 1)
``FASTCONV_ISA``            cap on the SIMD level: ``generic``, ``avx2`` or
                            ``avx512`` (read by the C runtime when the extension
                            loads; checked here so a typo is not ignored)
``FASTCONV_TUNE_FILE``      the tuning table (``fastconv tune``); empty: none
``FASTCONV_DATA``           the dataset cache folder (:mod:`fastconv.data`)
==========================  ==================================================

And the variables an MPI launcher sets in each process it starts, read by
:func:`mpi_launcher` (:mod:`fastconv.distributed` decides from them whether a
run is data-parallel): MPICH's and Intel MPI's ``PMI_RANK`` / ``PMI_SIZE``
(also set by Slurm's ``srun --mpi=pmi2``), Open MPI's
``OMPI_COMM_WORLD_RANK`` / ``OMPI_COMM_WORLD_SIZE``, PMIx's ``PMIX_RANK``
(with Slurm's ``SLURM_STEP_NUM_TASKS``, as ``srun --mpi=pmix`` sets them)
and Slurm's own ``SLURM_PROCID`` / ``SLURM_STEP_NUM_TASKS``.

fastconv also *sets* variables of other libraries when the user has not set
them, at ``import fastconv``, before the libraries read them
(:func:`set_runtime_defaults`): ``GOMP_SPINCOUNT=4000`` with
``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP threads spin about 100 microseconds,
then sleep; GNU OpenMP takes the spin count, other OpenMP runtimes the policy:
they sleep at once) and, when NumPy's OpenBLAS is not loaded yet,
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
import re
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


#: (launcher name, rank variable, size variable), tried in this order.
LAUNCHER_VARIABLES = (
    ("MPICH/Hydra (PMI)", "PMI_RANK", "PMI_SIZE"),
    ("Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
    ("PMIx", "PMIX_RANK", "SLURM_STEP_NUM_TASKS"),
    ("Slurm srun", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS"),
)


def mpi_launcher():
    """``(launcher name, rank, size)`` from the variables an MPI launcher (mpiexec,
    mpirun, srun) sets in the processes it starts, or None when none is set (a
    process started by hand). A malformed value is an :class:`EnvironmentVariableError`."""
    for name, rank_var, size_var in LAUNCHER_VARIABLES:
        rank, size = os.environ.get(rank_var), os.environ.get(size_var)
        if rank is None or size is None or not rank.strip() or not size.strip():
            continue
        try:
            r, n = int(rank), int(size)
        except ValueError:
            raise _bad(rank_var if not rank.strip().isdigit() else size_var,
                       rank if not rank.strip().isdigit() else size,
                       "an integer (it is set by the MPI launcher)") from None
        if n < 1 or not 0 <= r < n:
            raise _bad(rank_var, rank, f"a rank in [0, {size_var}={n})")
        return name, r, n
    return None

#: fastconv's default for OPENBLAS_THREAD_TIMEOUT: OpenBLAS's idle threads spin 2**16
#: cycles (about 25 us) after a call instead of OpenBLAS's 2**28 (about 0.1 s).
OPENBLAS_TIMEOUT_DEFAULT = "16"


def openblas_thread_timeout():
    """``OPENBLAS_THREAD_TIMEOUT`` as a string (as OpenBLAS reads it), or None when unset."""
    return os.environ.get("OPENBLAS_THREAD_TIMEOUT")


#: fastconv's default for GOMP_SPINCOUNT: GNU OpenMP's idle threads spin this many
#: times (a ``pause`` each: about 100 us on the development VM's Zen 4, 25 ns a pause)
#: before they sleep. Spinning for ever (OpenMP's "active") stole the cores from other
#: work; sleeping at once ("passive") made every parallel call pay a wake-up (70-130
#: us there), which a network's run of layer calls, each tens of microseconds after
#: the last, then paid once per layer.
GOMP_SPINCOUNT_DEFAULT = "4000"

_SPIN_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def _spincount(value):
    """GNU OpenMP's reading of a ``GOMP_SPINCOUNT`` value: a count, or None when it
    does not parse (GNU OpenMP then ignores it)."""
    v = value.strip().lower()
    if v in ("infinite", "infinity"):
        return float("inf")
    m = re.fullmatch(r"(\d+)\s*([kmgt]?)", v)
    return int(m.group(1)) * _SPIN_SUFFIX[m.group(2)] if m else None


def openmp_threads_spin(environ=None):
    """Whether idle OpenMP threads spin before they sleep under ``environ`` (default
    ``os.environ``), as GNU OpenMP reads it: ``GOMP_SPINCOUNT`` when it parses (> 0),
    else ``OMP_WAIT_POLICY`` (anything but ``passive`` spins). The kernels' serial
    thresholds (:mod:`fastconv._runtime`) depend on it: waking sleeping threads costs
    more than waking spinning ones."""
    env = os.environ if environ is None else environ
    count = _spincount(env.get("GOMP_SPINCOUNT", ""))
    if count is not None:
        return count > 0
    return env.get("OMP_WAIT_POLICY", "").strip().lower() != "passive"


def set_runtime_defaults(environ=None, blas_loaded=False):
    """Set ``GOMP_SPINCOUNT`` (:data:`GOMP_SPINCOUNT_DEFAULT`) and
    ``OMP_WAIT_POLICY=PASSIVE`` unless either is set, and ``OPENBLAS_THREAD_TIMEOUT``
    (:data:`OPENBLAS_TIMEOUT_DEFAULT`) unless it is set or OpenBLAS is already loaded
    (``blas_loaded``: it reads the variable only when it loads). ``environ``: the
    mapping to change (default ``os.environ``). Returns the names set."""
    env = os.environ if environ is None else environ
    done = []
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env["GOMP_SPINCOUNT"] = GOMP_SPINCOUNT_DEFAULT
        env["OMP_WAIT_POLICY"] = "PASSIVE"
        done += ["GOMP_SPINCOUNT", "OMP_WAIT_POLICY"]
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
    mpi_launcher()
    if paths:
        tune_file()
        data_dir()
