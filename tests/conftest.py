"""Shared test helpers: random arrays, tolerances, layouts and the thread fixtures."""

import os

import numpy as np
import pytest

# A tuning file of the machine's user (fastconv tune) must not steer algo="auto" in
# the tests; tests/test_tune.py points FASTCONV_TUNE_FILE at its own files.
os.environ["FASTCONV_TUNE_FILE"] = ""

import fastconv  # noqa: E402

DTYPES = [np.float32, np.float64]

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
