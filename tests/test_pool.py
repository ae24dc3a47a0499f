"""Native max / avg pooling (forward and backward) against the reference."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import reference as ref
from conftest import DTYPES, assert_close, randn


@st.composite
def pool_cases(draw, dilation=True):
    kh, kw = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    ph = draw(st.integers(0, (d[0] * (kh - 1) + 1) // 2))
    pw = draw(st.integers(0, (d[1] * (kw - 1) + 1) // 2))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    H, W = draw(st.integers(1, 17)), draw(st.integers(1, 17))
    assume(H + 2 * ph >= d[0] * (kh - 1) + 1 and W + 2 * pw >= d[1] * (kw - 1) + 1)
    return dict(shape=(draw(st.integers(1, 4)), draw(st.integers(1, 8)), H, W),
                kernel_size=(kh, kw), stride=stride, padding=(ph, pw), dilation=d,
                ceil_mode=draw(st.booleans()))


def _kw(case, dilation=True):
    kw = dict(kernel_size=case["kernel_size"], stride=case["stride"], padding=case["padding"],
              ceil_mode=case["ceil_mode"])
    if dilation:
        kw["dilation"] = case["dilation"]
    return kw


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=pool_cases(), seed=st.integers(0, 2**31 - 1), ties=st.booleans())
def test_max_pool_matches_reference(case, seed, ties, dtype):
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, case["shape"]) if ties else rng.standard_normal(case["shape"]))
    x = x.astype(dtype)
    try:
        y_r, idx_r = ref.max_pool2d(x, **_kw(case), return_indices=True)
    except ValueError:
        # A dilated window that covers only padding: both APIs reject it.
        with pytest.raises(ValueError, match="covers only padding"):
            fastconv.max_pool2d(x, **_kw(case))
        return
    y, idx = fastconv.max_pool2d(x, **_kw(case), return_indices=True)
    np.testing.assert_array_equal(y, y_r)
    np.testing.assert_array_equal(idx, idx_r)
    np.testing.assert_array_equal(fastconv.max_pool2d(x, **_kw(case)), y_r)   # values only
    assert idx.dtype == np.int64
    dy = randn(rng, y.shape, dtype)
    dx = fastconv.max_pool2d_backward(dy, idx, x.shape)
    assert_close(dx, ref.max_pool2d_backward(dy, idx_r, x.shape), dtype, scale=4)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=pool_cases(dilation=False), seed=st.integers(0, 2**31 - 1),
       count_include_pad=st.booleans())
def test_avg_pool_matches_reference(case, seed, count_include_pad, dtype):
    rng = np.random.default_rng(seed)
    x = randn(rng, case["shape"], dtype)
    kw = _kw(case, dilation=False)
    y = fastconv.avg_pool2d(x, **kw, count_include_pad=count_include_pad)
    assert_close(y, ref.avg_pool2d(x, **kw, count_include_pad=count_include_pad), dtype)
    dy = randn(rng, y.shape, dtype)
    dx = fastconv.avg_pool2d_backward(dy, x.shape, **kw, count_include_pad=count_include_pad)
    assert_close(dx, ref.avg_pool2d_backward(dy, x.shape, **kw,
                                             count_include_pad=count_include_pad), dtype, scale=4)


def test_max_pool_ties_give_gradient_to_one_element():
    x = np.ones((1, 1, 4, 4), np.float32)
    y, idx = fastconv.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(idx.ravel(), [0, 2, 8, 10])   # first element of each window
    dx = fastconv.max_pool2d_backward(np.ones_like(y), idx, x.shape)
    assert dx.sum() == 4 and dx.max() == 1
    # Overlapping windows: each window still sends its gradient to exactly one element.
    y, idx = fastconv.max_pool2d(x, 3, stride=1, return_indices=True)
    dx = fastconv.max_pool2d_backward(np.ones_like(y), idx, x.shape)
    assert dx.sum() == y.size


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_nan_and_inf(dtype):
    x = np.array([[[[1, np.nan, 3, 2],
                    [np.nan, 0, -np.inf, -np.inf],
                    [5, 6, -np.inf, -np.inf],
                    [7, 8, -np.inf, -np.inf]]]], dtype)
    y, idx = fastconv.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1     # first NaN wins
    assert y[0, 0, 1, 1] == -np.inf and idx[0, 0, 1, 1] == 10   # all -inf: a valid index
    assert y[0, 0, 0, 1] == 3 and y[0, 0, 1, 0] == 8
    all_nan = np.full((1, 1, 2, 2), np.nan, dtype)
    y, idx = fastconv.max_pool2d(all_nan, 2, return_indices=True)
    assert np.isnan(y).all() and idx.ravel()[0] == 0
    # NaN propagates through average pooling too.
    assert np.isnan(fastconv.avg_pool2d(x, 2)[0, 0, 0, 0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", [dict(kernel_size=3, stride=2, ceil_mode=True),
                                  dict(kernel_size=3, stride=2, padding=1),
                                  dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1),
                                  dict(kernel_size=(2, 5), stride=(1, 3), dilation=(2, 1))])
def test_max_pool_values_only_is_bitwise_the_indexed_forward(dtype, geom):
    # without return_indices the kernel skips the index stores (fc_maxpool2d_fwd_values):
    # the same scans, so the same bits, under every SIMD level (vector and scalar columns),
    # NaN, infinities and signed zeros (ties keep the first) included
    from conftest import gemm_isas
    from fastconv import _kernels

    rng = np.random.default_rng(7)
    x = rng.integers(-2, 3, (2, 5, 37, 71)).astype(dtype)
    x[x == 0] = rng.choice(np.array([0.0, -0.0], dtype), int((x == 0).sum()))
    x.reshape(-1)[rng.choice(x.size, 40, replace=False)] = np.nan
    x.reshape(-1)[rng.choice(x.size, 40, replace=False)] = -np.inf
    prev = _kernels.isa()
    try:
        for isa in gemm_isas():
            _kernels.set_isa(isa)
            y, _ = fastconv.max_pool2d(x, **geom, return_indices=True)
            v = fastconv.max_pool2d(x, **geom)
            assert v.dtype == y.dtype and v.shape == y.shape
            np.testing.assert_array_equal(v.view(f"u{x.itemsize}"), y.view(f"u{x.itemsize}"),
                                          err_msg=isa)
            np.testing.assert_array_equal(v, ref.max_pool2d(x, **geom), err_msg=isa)
    finally:
        _kernels.set_isa(prev)


def test_max_pool_padding_never_selected():
    x = -np.ones((1, 1, 3, 3))
    y, idx = fastconv.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    assert (y == -1).all() and (idx >= 0).all() and (idx < 9).all()


def test_pool_results_do_not_depend_on_threads(threads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 16, 33, 31)).astype(np.float32)
    out = []
    for n in (1, 2):
        fastconv.set_num_threads(n)
        y, idx = fastconv.max_pool2d(x, 3, 2, 1, return_indices=True)
        a = fastconv.avg_pool2d(x, 3, 2, 1, ceil_mode=True)
        out.append((y, idx, fastconv.max_pool2d_backward(y, idx, x.shape), a,
                    fastconv.avg_pool2d_backward(a, x.shape, 3, 2, 1, ceil_mode=True)))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def _central_difference(f, a, eps=1e-6):
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        fp = f()
        a[i] = old - eps
        fm = f()
        a[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=(2, 3), stride=1, ceil_mode=True)])
def test_gradcheck_float64(kw):
    rng = np.random.default_rng(7)
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 10.0   # distinct values: no ties
    g = rng.standard_normal(fastconv.max_pool2d(x, **kw).shape)
    _, idx = fastconv.max_pool2d(x, **kw, return_indices=True)
    dx = fastconv.max_pool2d_backward(g, idx, x.shape)
    np.testing.assert_allclose(
        dx, _central_difference(lambda: float(np.sum(fastconv.max_pool2d(x, **kw) * g)), x),
        atol=1e-7)
    for cip in (True, False):
        ga = rng.standard_normal(fastconv.avg_pool2d(x, **kw).shape)
        dxa = fastconv.avg_pool2d_backward(ga, x.shape, **kw, count_include_pad=cip)
        loss = lambda: float(np.sum(fastconv.avg_pool2d(x, **kw, count_include_pad=cip) * ga))
        np.testing.assert_allclose(dxa, _central_difference(loss, x), atol=1e-7)


def test_output_sizes_and_values_match_torch_over_a_sweep():
    """Which geometries are accepted, and the results, agree with PyTorch (incl. ceil_mode
    windows larger than the padded input, which PyTorch accepts when they start inside it)."""
    torch = pytest.importorskip("torch")
    import itertools

    rng = np.random.default_rng(0)
    for H, k, s, p, ceil in itertools.product(range(1, 6), range(1, 6), range(1, 4), range(3),
                                              (False, True)):
        if 2 * p > k:
            continue
        x = rng.random((1, 2, H, H + 1)).astype(np.float32)
        tx = torch.from_numpy(x)
        try:
            ty, tidx = torch.nn.functional.max_pool2d(tx, k, s, p, ceil_mode=ceil, return_indices=True)
            ta = torch.nn.functional.avg_pool2d(tx, k, s, p, ceil_mode=ceil)
        except RuntimeError:
            with pytest.raises(ValueError):
                fastconv.max_pool2d(x, k, s, p, ceil_mode=ceil)
            continue
        y, idx = fastconv.max_pool2d(x, k, s, p, ceil_mode=ceil, return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())
        np.testing.assert_allclose(fastconv.avg_pool2d(x, k, s, p, ceil_mode=ceil), ta.numpy(),
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                  dict(kernel_size=3, stride=1, padding=1),
                                  dict(kernel_size=2, stride=1, dilation=(3, 2)),
                                  dict(kernel_size=3, stride=2, dilation=(1, 2), padding=(1, 2)),
                                  dict(kernel_size=3, stride=(4, 2), dilation=(2, 1), padding=(2, 1)),
                                  dict(kernel_size=3, stride=2, ceil_mode=True)])
def test_max_pool_fast_scans_keep_first_maximum(dtype, geom):
    # the 2x2 and 3x3 windows take a shorter scan on planes without NaN (any NaN, or an
    # inf + -inf in the plane's sum, sends the plane through the exact scan); both must
    # give the reference's values and first-maximum indices, ties and signed zeros included.
    # Without indices, 3x3 windows whose last row is the next window's first (stride_h =
    # 2 * dilation_h) carry that row's maximum down (max_plane_carry): the same bits
    from conftest import gemm_isas
    from fastconv import _kernels

    rng = np.random.default_rng(11)
    x = rng.integers(-2, 3, (2, 6, 29, 70)).astype(dtype)
    x[x == 0] = rng.choice(np.array([0.0, -0.0], dtype), int((x == 0).sum()))
    planes = x.reshape(12, -1)
    planes[1, rng.choice(planes.shape[1], 9, replace=False)] = np.inf      # no NaN: fast scan
    planes[2, rng.choice(planes.shape[1], 9, replace=False)] = -np.inf     # no NaN: fast scan
    planes[3, rng.choice(planes.shape[1], 5, replace=False)] = np.nan      # exact scan
    planes[4, :5], planes[4, -5:] = np.inf, -np.inf                        # inf + -inf: exact
    planes[5] = -0.0
    want_y, want_i = ref.max_pool2d(x, **geom, return_indices=True)
    prev = _kernels.isa()
    try:
        for isa in gemm_isas():
            _kernels.set_isa(isa)
            y, i = fastconv.max_pool2d(x, **geom, return_indices=True)
            np.testing.assert_array_equal(y.view(f"u{x.itemsize}"), want_y.view(f"u{x.itemsize}"),
                                          err_msg=isa)
            np.testing.assert_array_equal(i, want_i, err_msg=isa)
            v = fastconv.max_pool2d(x, **geom)
            np.testing.assert_array_equal(v.view(f"u{x.itemsize}"), want_y.view(f"u{x.itemsize}"),
                                          err_msg=isa)
    finally:
        _kernels.set_isa(prev)
