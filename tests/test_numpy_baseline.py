"""The benchmark's plain-NumPy baseline (benchmarks/numpy_conv.py) agrees with the reference."""

import sys
from pathlib import Path

import numpy as np
import pytest

from fastconv import reference as ref

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import numpy_conv  # noqa: E402

CASES = [
    # (N, C, H, W, K, R, S, stride, padding, dilation, groups)
    (2, 3, 8, 7, 4, 3, 3, 1, 1, 1, 1),
    (1, 4, 9, 9, 6, 3, 2, (2, 3), (1, 0), (1, 2), 2),
    (2, 6, 7, 8, 6, 3, 3, 1, "same", 2, 6),
    (3, 2, 6, 6, 3, 2, 2, 1, "same", 1, 1),
    (2, 4, 10, 5, 8, 1, 3, 2, "valid", 1, 4),
    (1, 3, 11, 11, 2, 5, 5, 3, 2, 1, 1),
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1),
]


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("case", CASES)
def test_numpy_baseline_matches_reference(case, dtype, tol):
    N, C, H, W, K, R, S, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C // groups, R, S)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)

    y = numpy_conv.conv2d_forward(x, w, b, **kw)
    assert y.dtype == dtype and y.flags.c_contiguous
    np.testing.assert_allclose(y, ref.conv2d(x, w, b, **kw), rtol=tol, atol=tol)
    np.testing.assert_allclose(numpy_conv.conv2d_forward(x, w, None, **kw), ref.conv2d(x, w, **kw), rtol=tol, atol=tol)

    dy = rng.standard_normal(y.shape).astype(dtype)
    got = numpy_conv.conv2d_backward(dy, x, w, **kw)
    want = ref.conv2d_backward(dy, x, w, **kw)
    for g, e in zip(got, want):
        assert g.dtype == dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol)

    dx, dw, db = numpy_conv.conv2d_backward(dy, x, w, need_dx=False, need_db=False, **kw)
    assert dx is None and db is None
    np.testing.assert_allclose(dw, want[1], rtol=tol, atol=tol)


POOL_CASES = [
    # (N, C, H, W, kernel, stride, padding)
    (2, 3, 8, 8, 2, None, 0),
    (1, 2, 9, 7, 3, 2, 1),
    (2, 2, 7, 9, (2, 3), (1, 2), (1, 1)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", POOL_CASES)
def test_numpy_baseline_pooling_matches_reference(case, dtype):
    # the baseline's pooling: floor mode, no dilation, count_include_pad=True
    N, C, H, W, kernel, stride, padding = case
    rng = np.random.default_rng(1)
    # distinct values: the argmax is unambiguous, so both scatter to the same element
    x = rng.permutation(np.arange(N * C * H * W)).reshape(N, C, H, W).astype(dtype)
    kw = dict(stride=stride, padding=padding)

    y_ref, idx = ref.max_pool2d(x, kernel, return_indices=True, **kw)
    y, arg = numpy_conv.max_pool2d_forward(x, kernel, return_indices=True, **kw)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(numpy_conv.max_pool2d_forward(x, kernel, **kw), y_ref)
    dy = rng.integers(-4, 5, y.shape).astype(dtype)
    np.testing.assert_array_equal(
        numpy_conv.max_pool2d_backward(dy, arg, x.shape, kernel, **kw), ref.max_pool2d_backward(dy, idx, x.shape)
    )

    tol = 1e-12 if dtype == np.float64 else 1e-5
    ya = numpy_conv.avg_pool2d_forward(x, kernel, **kw)
    np.testing.assert_allclose(ya, ref.avg_pool2d(x, kernel, **kw), rtol=tol)
    np.testing.assert_allclose(
        numpy_conv.avg_pool2d_backward(dy, x.shape, kernel, **kw),
        ref.avg_pool2d_backward(dy, x.shape, kernel, **kw),
        rtol=tol,
        atol=tol,
    )
