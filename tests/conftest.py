"""Shared test helpers: random arrays, tolerances, layouts and the thread fixtures."""

import copy
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

# A tuning file of the machine's user (fastconv tune) must not steer algo="auto" in
# the tests; tests/test_tune.py points FASTCONV_TUNE_FILE at its own files.
os.environ["FASTCONV_TUNE_FILE"] = ""

import fastconv  # noqa: E402

DTYPES = [np.float32, np.float64]


def subprocess_env(**extra):
    """The environment for a child Python that must import the very fastconv these
    tests import (installed or built in place): its folder goes first on PYTHONPATH."""
    env = dict(os.environ)
    root = str(Path(fastconv.__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def run_python(args, *, env=None, cwd=None, **kwargs):
    """Run ``python ARGS`` as a child process that imports the same fastconv as the tests,
    whatever the working directory of the test run: the child starts in a scratch folder
    (``python -c`` and ``-m`` put the working directory first on sys.path, so starting in
    a source checkout would import its uncompiled tree)."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 300)
    with tempfile.TemporaryDirectory() as scratch:
        return subprocess.run([sys.executable, *args], env=env or subprocess_env(),
                              cwd=cwd or scratch, **kwargs)

def mpiexec_path():
    """The ``mpiexec`` beside the test's Python (the mpich wheel puts it there), else the
    one on PATH, else None."""
    import shutil

    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


def run_mpi(n, args, *, env=None, cwd=None, **kwargs):
    """Run ``mpiexec -n N python ARGS``: N ranks of a child Python that imports the same
    fastconv as the tests (as :func:`run_python`, from a scratch folder unless ``cwd``)."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 120)
    with tempfile.TemporaryDirectory() as scratch:
        return subprocess.run([mpiexec_path(), "-n", str(n), sys.executable, *args],
                              env=env or subprocess_env(), cwd=cwd or scratch, **kwargs)


# Comparison tolerances against the reference, per dtype.
TOL = {np.dtype(np.float32): dict(rtol=1e-4, atol=1e-4), np.dtype(np.float64): dict(rtol=1e-10, atol=1e-10)}


def tol(dtype, scale=1.0):
    t = TOL[np.dtype(dtype)]
    return dict(rtol=t["rtol"], atol=t["atol"] * scale)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def assert_close(actual, expected, dtype, scale=1.0, err_msg=""):
    """Compare to the reference; atol scales with the magnitude of the expected values."""
    expected = np.asarray(expected)
    mag = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    t = tol(dtype, scale * mag)
    np.testing.assert_allclose(actual, expected, err_msg=err_msg, **t)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def threads():
    """Restore the thread count after a test changes it."""
    prev = fastconv.get_num_threads()
    yield
    fastconv.set_num_threads(prev)


@pytest.fixture
def isa_restore():
    """Put back the SIMD level after a test changes it (``_kernels.set_isa``)."""
    from fastconv import _kernels

    prev = _kernels.isa()
    yield
    _kernels.set_isa(prev)


def reference_forward(model, x):
    """``model``'s eval-mode forward on the reference backend (a copy: the model's own
    mode and state are left as they are)."""
    with fastconv.use_backend("reference"):
        return copy.deepcopy(model).eval().forward(x)


def gemm_isas():
    """The SIMD variants of fastconv's kernels this CPU runs ("generic", "avx2", "avx512";
    set_isa caps a request at what the CPU has), for tests that run under each."""
    from fastconv import _kernels

    prev = _kernels.isa()
    try:
        return [n for n in ("generic", "avx2", "avx512") if _kernels.set_isa(n) == n]
    finally:
        _kernels.set_isa(prev)


def run_in_threads(fn, n=4, timeout=120):
    """Run fn(0), ..., fn(n-1) in n Python threads at once; re-raise the first error."""
    import threading

    errors = []

    def target(i):
        try:
            fn(i)
        except BaseException as e:  # pragma: no cover - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    if errors:
        raise errors[0]
