"""Edge cases of the native kernels that the random tests rarely reach.

* inf / NaN in input elements that no output window reads (a column or row
  cut off by the stride, the gaps between windows when the stride exceeds the
  kernel): the weight gradient must stay what the definition gives (finite,
  as fastconv.reference), for every algorithm that takes strided geometries
  (all but Winograd) and dtype. A kernel that runs
  over padded rows must never multiply such an element, not even by zero
  (0 * inf = NaN).
* inf / NaN weights: dx takes w * dy only for real dy elements (a kernel
  that runs over a zero-padded dy must not multiply a weight by the padding).
* every SIMD variant of the direct convolution and of pooling (the machine's
  own and the narrower ones, forced through fastconv._kernels.set_isa) against
  the exact reference, on shapes wide enough to take the vector paths.

Only valid combinations run: Winograd takes 3x3 stride-1 kernels only, and every
unread-element case is strided, so for Winograd those cases assert the error.
"""

import numpy as np
import pytest

import fastconv
from fastconv import _kernels
from fastconv import reference as ref
from conftest import DTYPES, assert_close, gemm_isas
from oracles import check_conv, conv_exact

# Every algorithm but Winograd takes every geometry (Winograd: 3x3, stride 1, dilation 1).
ALGOS = ["auto", "im2col", "direct", "gemm"]

# (x shape, w shape, stride, padding, dilation, the x positions no window reads)
UNREAD = [
    # W = 10, 3 wide, stride 2: windows start at 0, 2, 4, 6 -> column 9 unread; likewise row 9
    ((2, 3, 10, 10), (4, 3, 3, 3), 2, 0, 1, "last"),
    # rows and columns 41 unread; 20 outputs per row (wide enough for 16-lane vectors)
    ((2, 2, 42, 42), (5, 2, 3, 3), 2, 0, 1, "last"),
    # kernel 2, stride 3: columns 2, 5, 8, ... lie between the windows
    ((2, 2, 26, 26), (3, 2, 2, 2), 3, 0, 1, "gaps"),
    # a 7 x 7 stem-like kernel, stride 2: row and column 37 unread
    ((1, 3, 38, 38), (8, 3, 7, 7), 2, 0, 1, "last"),
    # stride 4 > kernel 3, padding 1: gaps 2, 6, 10, ... between the windows
    ((1, 3, 40, 40), (8, 3, 3, 3), 4, 1, 1, "gaps"),
    # dilation 2, stride 2 (taps at even offsets): odd columns beyond the last tap unread
    ((2, 2, 23, 23), (3, 2, 3, 3), 2, 0, 2, "last"),
]


def _unread_mask(shape, w_shape, stride, padding, dilation):
    """True where no output window of the convolution reads x."""
    H, W = shape[2:]
    R, S = w_shape[2:]
    P = (H + 2 * padding - dilation * (R - 1) - 1) // stride + 1
    Q = (W + 2 * padding - dilation * (S - 1) - 1) // stride + 1
    rows = np.zeros(H, bool)
    cols = np.zeros(W, bool)
    for p in range(P):
        for r in range(R):
            h = p * stride - padding + r * dilation
            if 0 <= h < H:
                rows[h] = True
    for q in range(Q):
        for s in range(S):
            v = q * stride - padding + s * dilation
            if 0 <= v < W:
                cols[v] = True
    return ~(rows[:, None] & cols[None, :])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("case", range(len(UNREAD)))
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_unread_inf_nan_do_not_reach_the_weight_gradient(case, algo, dtype, bad):
    shape, w_shape, stride, padding, dilation, _ = UNREAD[case]
    rng = np.random.default_rng(7 + case)
    x = rng.integers(-3, 4, shape).astype(dtype)
    w = rng.integers(-3, 4, w_shape).astype(dtype)
    mask = _unread_mask(shape, w_shape, stride, padding, dilation)
    assert mask.any()
    x[:, :, mask] = bad
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    y_r = ref.conv2d(x, w, **kw)
    dy = rng.integers(-3, 4, y_r.shape).astype(dtype)
    dx_r, dw_r, db_r = ref.conv2d_backward(dy, x, w, **kw)
    assert np.isfinite(y_r).all() and np.isfinite(dw_r).all()

    y = fastconv.conv2d(x, w, algo=algo, **kw)
    dx, dw, db = fastconv.conv2d_backward(dy, x, w, algo=algo, **kw)
    assert np.isfinite(dw).all(), f"{algo}: inf/NaN of unread x elements reached dw"
    assert np.isfinite(y).all()
    # integer-valued data: every algorithm's sums are exact (dx keeps the reference's
    # inf/NaN at the unread positions: dx there is a sum of w * dy, with no x in it)
    np.testing.assert_array_equal(y, y_r)
    np.testing.assert_array_equal(dw, dw_r)
    np.testing.assert_array_equal(dx, dx_r)
    np.testing.assert_array_equal(db, db_r)


@pytest.mark.parametrize("case", range(len(UNREAD)))
def test_winograd_rejects_the_strided_cases(case):
    """Every case above is strided (or dilated): algo="winograd" is a ValueError naming
    the rule, for the forward pass and the gradients alike, never a silent fallback."""
    shape, w_shape, stride, padding, dilation, _ = UNREAD[case]
    x = np.ones(shape, np.float32)
    w = np.ones(w_shape, np.float32)
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    dy = np.ones(ref.conv2d(x, w, **kw).shape, np.float32)
    msg = r"winograd.*needs a 3x3 kernel with stride 1 and dilation 1"
    with pytest.raises(ValueError, match=msg):
        fastconv.conv2d(x, w, algo="winograd", **kw)
    with pytest.raises(ValueError, match=msg):
        fastconv.conv2d_backward(dy, x, w, algo="winograd", **kw)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
def test_read_inf_nan_propagate_as_in_the_reference(dtype):
    """inf / NaN that windows do read give the reference's inf / NaN pattern in dw
    (the direct kernels run in any order, which IEEE inf and NaN sums do not mind)."""
    rng = np.random.default_rng(3)
    x = rng.integers(-3, 4, (2, 2, 20, 20)).astype(dtype)
    w = rng.integers(-3, 4, (3, 2, 3, 3)).astype(dtype)
    x[0, 1, 5, 7] = np.inf
    x[1, 0, 11, 0] = np.nan
    for kw in (dict(stride=1, padding=1), dict(stride=2, padding=0)):
        y_r = ref.conv2d(x, w, **kw)
        dy = rng.integers(1, 4, y_r.shape).astype(dtype)      # positive: no inf - inf
        _, dw_r, _ = ref.conv2d_backward(dy, x, w, **kw)
        _, dw, _ = fastconv.conv2d_backward(dy, x, w, algo="direct", **kw)
        np.testing.assert_array_equal(np.isnan(dw), np.isnan(dw_r))
        np.testing.assert_array_equal(np.isinf(dw), np.isinf(dw_r))
        fin = np.isfinite(dw_r)
        assert_close(dw[fin], dw_r[fin], dtype)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", ["direct", "im2col", "gemm", "auto"])
@pytest.mark.parametrize("kw", [dict(stride=1, padding=1), dict(stride=2, padding=1),
                                dict(stride=1, padding=0, dilation=2)])
def test_inf_nan_weights_reach_dx_as_in_the_reference(kw, algo, dtype):
    """dx only takes w * dy for real dy elements: an inf weight gives inf (not NaN)
    where no real dy meets it with the other sign, as in fastconv.reference."""
    rng = np.random.default_rng(9)
    x = rng.integers(-3, 4, (2, 3, 21, 19)).astype(dtype)
    w = rng.integers(-3, 4, (4, 3, 3, 3)).astype(dtype)
    w[1, 2, 0, 0] = np.inf
    w[3, 0, 2, 1] = np.nan
    y_r = ref.conv2d(x, w, **kw)
    dy = rng.integers(1, 4, y_r.shape).astype(dtype)        # positive: no inf - inf
    dx_r, _, _ = ref.conv2d_backward(dy, x, w, **kw)
    dx, _, _ = fastconv.conv2d_backward(dy, x, w, algo=algo, **kw)
    np.testing.assert_array_equal(np.isnan(dx), np.isnan(dx_r))
    np.testing.assert_array_equal(np.isinf(dx), np.isinf(dx_r))
    fin = np.isfinite(dx_r)
    assert_close(dx[fin], dx_r[fin], dtype)


# ---- every SIMD variant ----------------------------------------------------

@pytest.fixture(params=gemm_isas())
def isa_variant(request):
    """Each SIMD variant this CPU runs, forced; the previous one restored after."""
    prev = _kernels.isa()
    assert _kernels.set_isa(request.param) == request.param
    yield request.param
    _kernels.set_isa(prev)


# (x shape, w shape, stride, padding, groups): small-channel, depthwise and
# strided layers with rows of 1 to 40 outputs (portable, 4-, 8- and 16-lane paths)
CONV_SHAPES = [
    ((3, 1, 28, 28), (20, 1, 5, 5), 1, 0, 1),
    ((2, 3, 32, 32), (32, 3, 3, 3), 1, 1, 1),
    ((1, 3, 40, 38), (10, 3, 7, 7), 2, 3, 1),
    ((2, 8, 19, 17), (8, 1, 3, 3), 1, 1, 8),
    ((2, 6, 9, 11), (6, 2, 3, 3), 2, 1, 3),
    ((2, 2, 3, 3), (5, 2, 3, 3), 1, 1, 1),
    ((1, 2, 12, 41), (7, 2, 1, 3), (1, 3), (0, 1), 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_direct_conv_every_variant(isa_variant, dtype):
    rng = np.random.default_rng(11)
    for shape, w_shape, stride, padding, groups in CONV_SHAPES:
        x = rng.standard_normal(shape).astype(dtype)
        w = rng.standard_normal(w_shape).astype(dtype)
        b = rng.standard_normal(w_shape[0]).astype(dtype)
        kw = dict(stride=stride, padding=padding, groups=groups)
        y = fastconv.conv2d(x, w, b, algo="direct", **kw)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx, dw, db = fastconv.conv2d_backward(dy, x, w, algo="direct", **kw)
        # each element to its rounding bound against the exact float64 result
        check_conv(dict(y=y, dx=dx, dw=dw, db=db), conv_exact(x, w, b, dy, **kw), dtype,
                   what=f"direct {isa_variant} {shape}")
        # the same result for every thread count
        prev = fastconv.set_num_threads(1)
        try:
            _, dw1, db1 = fastconv.conv2d_backward(dy, x, w, algo="direct", **kw)
            y1 = fastconv.conv2d(x, w, b, algo="direct", **kw)
        finally:
            fastconv.set_num_threads(prev)
        np.testing.assert_array_equal(dw1, dw)
        np.testing.assert_array_equal(db1, db)
        np.testing.assert_array_equal(y1, y)


POOL_SHAPES = [
    ((2, 3, 32, 32), 2, 2, 0),
    ((1, 4, 37, 45), 3, 2, 1),
    ((2, 2, 9, 40), (2, 3), (1, 2), (1, 1)),
    ((1, 2, 30, 30), 3, 1, 1),
    ((1, 2, 20, 20), 3, 3, 0),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_pooling_every_variant(isa_variant, dtype):
    rng = np.random.default_rng(5)
    for shape, k, s, p in POOL_SHAPES:
        x = rng.integers(-3, 4, shape).astype(dtype)            # many ties
        x.flat[rng.integers(0, x.size, 8)] = np.nan
        x.flat[rng.integers(0, x.size, 8)] = -np.inf
        y, idx = fastconv.max_pool2d(x, k, s, p, return_indices=True)
        y_r, idx_r = ref.max_pool2d(x, k, s, p, return_indices=True)
        np.testing.assert_array_equal(y, y_r)
        np.testing.assert_array_equal(idx, idx_r)
        dy = rng.standard_normal(y.shape).astype(dtype)
        assert_close(fastconv.max_pool2d_backward(dy, idx, x.shape),
                     ref.max_pool2d_backward(dy, idx_r, x.shape), dtype)
        xf = rng.standard_normal(shape).astype(dtype)
        for cip in (True, False):
            ya = fastconv.avg_pool2d(xf, k, s, p, count_include_pad=cip)
            assert_close(ya, ref.avg_pool2d(xf, k, s, p, count_include_pad=cip), dtype)
            dya = rng.standard_normal(ya.shape).astype(dtype)
            assert_close(fastconv.avg_pool2d_backward(dya, xf.shape, k, s, p, count_include_pad=cip),
                         ref.avg_pool2d_backward(dya, xf.shape, k, s, p, count_include_pad=cip),
                         dtype)
