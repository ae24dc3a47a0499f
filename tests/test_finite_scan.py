"""The finiteness scan before Winograd (``_dispatch.all_finite``, C ``fc_all_finite``).

``algo="auto"`` must not run Winograd on data holding inf or NaN (its transforms
would spread one inf into NaN over outputs the reference leaves finite), so every
such pass first scans its operands. The scan must find one bad element wherever it
is (block edges, thread shares), in both dtypes, and never call huge finite values
bad (a sum would overflow; the exponent test does not).
"""

import numpy as np
import pytest

import fastconv
from fastconv import _kernels as K
from fastconv import reference as ref
from fastconv._args import conv_params
from fastconv._dispatch import all_finite, choose_algo
from conftest import DTYPES


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 4095, 4096, 4097, 70001])
@pytest.mark.parametrize("nthreads", [1, 2])
def test_scan_finds_one_bad_element_anywhere(dtype, n, nthreads):
    a = np.random.default_rng(n).uniform(-1, 1, n).astype(dtype)
    assert K.all_finite(a, nthreads)
    spots = sorted({0, n // 2, n - 1, min(4095, n - 1), min(4096, n - 1), min(35000, n - 1)})
    for bad in (np.inf, -np.inf, np.nan):
        for i in spots:
            b = a.copy()
            b[i] = bad
            assert not K.all_finite(b, nthreads), (bad, i)
    assert K.all_finite(a[:0], nthreads)


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_finite_values_are_finite(dtype):
    big = np.finfo(dtype).max
    a = np.full(5000, big, dtype)
    assert K.all_finite(a, 1)
    assert all_finite(a)
    a[-1] = -big
    assert all_finite(a, a[::-1].copy())


def test_python_entry_point_covers_every_layout():
    x = np.zeros((4, 6, 8), np.float32)
    strided = x[:, ::2, 1:]                       # not contiguous: the NumPy path
    assert all_finite(x, strided, x.astype(np.float16))
    x[3, 4, 5] = np.nan
    assert not all_finite(x[:, ::2, 1:])
    assert not all_finite(np.ones(3, np.float32), x)
    assert not all_finite(x.astype(np.float16))
    assert all_finite()


@pytest.mark.parametrize("dtype", DTYPES)
def test_auto_conv_with_inf_keeps_the_reference_pattern(dtype):
    # a geometry where auto picks Winograd on finite data; one inf in x must not become
    # NaN across its tiles: the output's inf / NaN positions are the reference's
    rng = np.random.default_rng(3)
    x = rng.integers(-3, 4, (8, 16, 20, 20)).astype(dtype)
    w = rng.integers(1, 3, (16, 16, 3, 3)).astype(dtype)         # positive: no inf - inf
    assert choose_algo("auto", conv_params(x.shape, w.shape, 1, 1, 1, 1), False) == "winograd"
    x[1, 3, 5, 6] = np.inf
    want = ref.conv2d(x, w, padding=1)
    got = fastconv.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fin = np.isfinite(want)
    assert (~fin).sum() > 0 and fin.sum() > 0
    np.testing.assert_array_equal(got[fin], want[fin])
