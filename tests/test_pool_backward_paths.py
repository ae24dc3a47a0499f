"""The pooling gradients' two C paths, under every SIMD variant and thread count.

Max pooling backward writes a plane in one pass when each index lies in its own
bh x bw block (bh = H // P, bw = W // Q: every stride == kernel pooling without
padding), else it zeroes the plane and scatters; average pooling backward takes a
one-store-per-element path when the windows do not overlap (stride >= kernel),
else a gather. Both must give exactly the reference's values (integer-valued dy
keeps the max sums exact; average pooling's non-overlapping windows give each element
exactly one quotient), whatever the path.
"""

import numpy as np
import pytest

import fastconv
from fastconv import _kernels
from fastconv import reference as ref
from conftest import DTYPES, assert_close, gemm_isas


@pytest.fixture(params=gemm_isas())
def isa(request):
    prev = _kernels.isa()
    _kernels.set_isa(request.param)
    yield request.param
    _kernels.set_isa(prev)


@pytest.fixture(params=[1, 2, 3])
def nthreads(request):
    prev = fastconv.get_num_threads()
    fastconv.set_num_threads(request.param)
    yield request.param
    fastconv.set_num_threads(prev)


def _int_dy(rng, shape, dtype):
    return rng.integers(-8, 9, shape).astype(dtype)


# (N, C, H, W, kernel, stride, padding, ceil_mode): stride == kernel (block path, also
# with rows / columns left over and rows shorter than one vector), overlapping, gaps
MAX_CASES = [
    (2, 3, 32, 32, 2, 2, 0, False),
    (2, 3, 33, 35, 2, 2, 0, False),
    (1, 5, 9, 70, 2, 2, 0, False),
    (1, 2, 5, 3, 2, 2, 0, False),
    (3, 2, 12, 18, 3, 3, 0, False),
    (2, 2, 13, 14, (2, 3), (2, 3), 0, False),
    (2, 3, 33, 35, 2, 2, 0, True),
    (2, 3, 32, 34, 2, 2, 1, False),
    (2, 3, 30, 30, 3, 2, 1, False),
    (2, 3, 17, 40, 3, 1, 1, False),
    (1, 2, 16, 16, 2, 3, 0, False),
    (2, 3, 20, 20, 4, 2, 0, True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MAX_CASES, ids=str)
def test_max_backward_matches_reference(case, dtype, isa, nthreads):
    N, C, H, W, k, s, p, ceil = case
    rng = np.random.default_rng(7)
    for ties in (False, True):
        x = rng.integers(-2, 3, (N, C, H, W)) if ties else rng.standard_normal((N, C, H, W))
        x = x.astype(dtype)
        y, idx = fastconv.max_pool2d(x, k, s, p, ceil_mode=ceil, return_indices=True)
        _, idx_r = ref.max_pool2d(x, k, s, p, ceil_mode=ceil, return_indices=True)
        np.testing.assert_array_equal(idx, idx_r)
        dy = _int_dy(rng, y.shape, dtype)
        dx = fastconv.max_pool2d_backward(dy, idx, x.shape)
        np.testing.assert_array_equal(dx, ref.max_pool2d_backward(dy, idx_r, x.shape))
        assert dx.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_backward_indices_outside_their_block(dtype, isa, nthreads):
    """Indices that are valid but not in their own block (here: every plane's first
    window points at the last element; later planes only, so the block path starts and
    then falls back), duplicates, and negative zeros: the scatter's exact result."""
    rng = np.random.default_rng(3)
    N, C, H, W = 2, 4, 32, 36
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    y, idx = fastconv.max_pool2d(x, 2, return_indices=True)
    idx = idx.copy()
    idx[1, 2:, 0, 0] = H * W - 1
    idx[1, 3, 5, 7] = idx[1, 3, 5, 6]          # a duplicate: the two gradients add
    dy = _int_dy(rng, y.shape, dtype)
    dy[0, 0, 0, :] = -0.0
    want = np.zeros((N, C, H * W), dtype)
    for n in range(N):
        for c in range(C):
            np.add.at(want[n, c], idx[n, c].ravel(), dy[n, c].ravel())
    dx = fastconv.max_pool2d_backward(dy, idx, x.shape)
    np.testing.assert_array_equal(dx.reshape(N, C, -1), want)
    # 0 + (-0) is +0, as the scatter gives
    np.testing.assert_array_equal(np.signbit(dx), np.signbit(want.reshape(dx.shape)))


@pytest.mark.parametrize("bad", [-1, 32 * 32, 2**32 + 5])
def test_max_backward_bad_index_in_a_later_plane(bad, isa, nthreads):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    y, idx = fastconv.max_pool2d(x, 2, return_indices=True)
    idx = idx.copy()
    idx[1, 2, 3, 4] = bad
    with pytest.raises(ValueError, match=r"outside \[0, H\*W\)"):
        fastconv.max_pool2d_backward(np.ones_like(y), idx, x.shape)


# (H, W, kernel, stride, padding, ceil_mode): non-overlapping windows (block path,
# with padding, ceil mode, gaps, left-over rows) and overlapping ones (gather)
AVG_CASES = [
    (32, 32, 2, 2, 0, False),
    (33, 35, 2, 2, 0, False),
    (9, 70, 2, 2, 0, False),
    (33, 35, 2, 2, 0, True),
    (32, 34, 2, 2, 1, False),
    (31, 30, 3, 3, 1, True),
    (16, 17, 2, 3, 0, False),
    (13, 14, (2, 3), (2, 3), 0, False),
    (20, 20, 3, 2, 1, False),
    (17, 40, 3, 1, 1, True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", AVG_CASES, ids=str)
def test_avg_backward_matches_reference(case, count_include_pad, dtype, isa, nthreads):
    H, W, k, s, p, ceil = case
    rng = np.random.default_rng(5)
    shape = (2, 3, H, W)
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
              count_include_pad=count_include_pad)
    y = ref.avg_pool2d(np.zeros(shape, dtype), **kw)
    dy = _int_dy(rng, y.shape, dtype)
    dy[0, 0, 0, 0] = -0.0
    dx = fastconv.avg_pool2d_backward(dy, shape, **kw)
    want = ref.avg_pool2d_backward(dy, shape, **kw)
    kk, ss = np.broadcast_to(k, 2), np.broadcast_to(s, 2)
    if (ss >= kk).all():    # one share per element: exactly the reference's quotient
        np.testing.assert_array_equal(dx, want)
        np.testing.assert_array_equal(np.signbit(dx), np.signbit(want))
    else:                   # sums of shares, in another order than the reference's
        assert_close(dx, want, dtype, scale=4)
