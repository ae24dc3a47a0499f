"""Native im2col / col2im against the reference, hand-worked examples and properties."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import reference as ref
from conftest import DTYPES


@st.composite
def unfold_cases(draw):
    """A valid unfold: batch 0-3, channels 1-4, sizes 1-12, kernels 1-5, stride 1-3,
    padding 0-3, dilation 1-3, with the kernel fitting in the padded input."""
    N = draw(st.integers(0, 3))
    C = draw(st.integers(1, 4))
    H = draw(st.integers(1, 12))
    W = draw(st.integers(1, 12))
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    assume(H + 2 * padding[0] >= dilation[0] * (k[0] - 1) + 1)
    assume(W + 2 * padding[1] >= dilation[1] * (k[1] - 1) + 1)
    return dict(shape=(N, C, H, W), kernel_size=k, stride=stride, padding=padding, dilation=dilation)


def _ints(seed, shape, dtype):
    # Small integers: every sum is exact in float32, so comparisons can be exact.
    return np.random.default_rng(seed).integers(-9, 10, size=shape).astype(dtype)


def _kw(case):
    return dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"])


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=unfold_cases(), seed=st.integers(0, 2**31 - 1))
def test_im2col_matches_reference(case, seed, dtype):
    x = _ints(seed, case["shape"], dtype)
    cols = fastconv.im2col(x, case["kernel_size"], **_kw(case))
    expected = ref.im2col(x, case["kernel_size"], **_kw(case))
    assert cols.dtype == dtype and cols.shape == expected.shape
    np.testing.assert_array_equal(cols, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=unfold_cases(), seed=st.integers(0, 2**31 - 1))
def test_col2im_matches_reference_and_is_adjoint(case, seed, dtype):
    N, C, H, W = case["shape"]
    x = _ints(seed, case["shape"], dtype)
    cols_shape = fastconv.im2col(x, case["kernel_size"], **_kw(case)).shape
    cols = _ints(seed + 1, cols_shape, dtype)
    out = fastconv.col2im(cols, (H, W), case["kernel_size"], **_kw(case))
    expected = ref.col2im(cols, (H, W), case["kernel_size"], **_kw(case))
    assert out.dtype == dtype and out.shape == (N, C, H, W)
    np.testing.assert_array_equal(out, expected)
    # <im2col(x), cols> == <x, col2im(cols)>, exact in float64 for small integers.
    lhs = np.sum(fastconv.im2col(x, case["kernel_size"], **_kw(case)).astype(np.float64) * cols)
    rhs = np.sum(x.astype(np.float64) * out)
    assert lhs == rhs


def test_im2col_hand_example():
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    cols = fastconv.im2col(x, 2)
    # rows: (r, s) = (0,0), (0,1), (1,0), (1,1); columns: windows (p, q) row-major
    expected = np.array([[[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]]], dtype=np.float64)
    np.testing.assert_array_equal(cols, expected)


def test_im2col_padding_stride_dilation_hand_example():
    x = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2)   # [[1, 2], [3, 4]]
    cols = fastconv.im2col(x, (1, 2), stride=(1, 2), padding=(0, 1), dilation=(1, 2))
    # W padded: [0, 1, 2, 0]; taps at w = 2q - 1 + 2s for q in {0}: s=0 -> -1, s=1 -> 1
    # P = 2, Q = floor((2 + 2 - 2 - 1)/2) + 1 = 1
    expected = np.array([[[0, 0], [2, 4]]], dtype=np.float32)
    np.testing.assert_array_equal(cols, expected)


def test_col2im_sums_overlaps_hand_example():
    cols = np.ones((1, 4, 4), dtype=np.float64)     # 3x3 image, 2x2 kernel, 2x2 windows
    x = fastconv.col2im(cols, (3, 3), 2)
    np.testing.assert_array_equal(x[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_col2im_overwrites_nothing_but_its_output_and_zeroes_first():
    rng = np.random.default_rng(3)
    cols = rng.integers(-5, 5, size=(2, 3 * 9, 16)).astype(np.float32)
    before = cols.copy()
    a = fastconv.col2im(cols, (6, 6), 3, padding=0)
    b = fastconv.col2im(cols, (6, 6), 3, padding=0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(cols, before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_thread_count(dtype, threads):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 5, 13, 11)).astype(dtype)
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    fastconv.set_num_threads(1)
    c1 = fastconv.im2col(x, 3, **kw)
    x1 = fastconv.col2im(c1, (13, 11), 3, **kw)
    fastconv.set_num_threads(3)
    c3 = fastconv.im2col(x, 3, **kw)
    x3 = fastconv.col2im(c3, (13, 11), 3, **kw)
    assert np.array_equal(c1, c3) and np.array_equal(x1, x3)


def test_any_input_layout_gives_the_same_result():
    rng = np.random.default_rng(11)
    base = rng.standard_normal((2, 3, 9, 8))
    expected = fastconv.im2col(base, 3, padding=1)
    for x in (np.asfortranarray(base), base[:, :, ::-1, :][:, :, ::-1, :],
              base.astype(base.dtype.newbyteorder(">"))):
        x.flags.writeable = False
        np.testing.assert_array_equal(fastconv.im2col(x, 3, padding=1), expected)
    strided = np.zeros((2, 3, 18, 8))
    strided[:, :, ::2] = base
    np.testing.assert_array_equal(fastconv.im2col(strided[:, :, ::2], 3, padding=1), expected)


def test_empty_batch():
    x = np.zeros((0, 2, 5, 5), dtype=np.float32)
    cols = fastconv.im2col(x, 3)
    assert cols.shape == (0, 18, 9) and cols.dtype == np.float32
    assert fastconv.col2im(cols, (5, 5), 3).shape == (0, 2, 5, 5)


def test_bad_input_raises():
    x = np.zeros((1, 2, 4, 4), dtype=np.float32)
    with pytest.raises(ValueError):
        fastconv.im2col(x, 5)                       # kernel larger than the input
    with pytest.raises(ValueError):
        fastconv.im2col(x, 2, stride=0)
    with pytest.raises(ValueError):
        fastconv.im2col(x[0], 2)                    # not 4-d
    with pytest.raises(TypeError):
        fastconv.im2col(x.astype(np.int32), 2)
    cols = np.zeros((1, 8, 9), dtype=np.float32)
    with pytest.raises(ValueError):
        fastconv.col2im(cols, (4, 4), 2, stride=2)  # 9 columns, but 2x2 windows
    with pytest.raises(ValueError):
        fastconv.col2im(np.zeros((1, 7, 9)), (4, 4), 2)   # 7 rows: not a multiple of 4


def test_im2col_col2im_match_torch_unfold_fold():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 10, 7)).astype(np.float32)
    kw = dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1))
    want = torch.nn.functional.unfold(torch.from_numpy(x), **kw).numpy()
    np.testing.assert_array_equal(fastconv.im2col(x, **kw), want)
    c = rng.standard_normal(want.shape).astype(np.float32)
    folded = torch.nn.functional.fold(torch.from_numpy(c), (10, 7), **kw).numpy()
    np.testing.assert_allclose(fastconv.col2im(c, (10, 7), **kw), folded, rtol=1e-5, atol=1e-5)


C2I_GEOMS = [
    # (N, C, H, W), kernel, stride, padding, dilation: rows wider than one vector (float:
    # 16, double: 8), more and fewer than four output rows per tap, strided rows,
    # dilated and padded taps, a kernel wider than the input row
    ((2, 3, 12, 12), (5, 5), (1, 1), (0, 0), (1, 1)),
    ((1, 2, 21, 37), (3, 3), (2, 1), (1, 1), (1, 1)),
    ((1, 2, 9, 40), (2, 4), (1, 1), (2, 3), (2, 3)),
    ((2, 1, 7, 5), (3, 7), (3, 1), (1, 3), (1, 1)),
    # strided along W (an expanding load): stride 2 as ResNet's, 3 with dilation and padding
    ((1, 2, 6, 19), (4, 2), (1, 2), (1, 0), (1, 2)),
    ((2, 3, 17, 33), (3, 3), (2, 2), (1, 1), (1, 1)),
    ((1, 2, 11, 29), (2, 5), (1, 3), (0, 2), (2, 2)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", C2I_GEOMS, ids=lambda g: "x".join(map(str, g[0])))
def test_col2im_same_bits_under_every_isa(dtype, geom, isa_restore):
    """The AVX-512 body (a vector of a dx row, the taps added into it) against the portable
    one (each tap's row added in memory): the same additions in the same order, so the
    same bits on real-valued data with signed zeros, infinities and NaN; exact against the
    reference on small integers."""
    from conftest import gemm_isas
    from fastconv import _kernels

    shape, k, stride, padding, dilation = geom
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    rng = np.random.default_rng(11)
    n_cols = fastconv.im2col(np.zeros(shape, dtype), k, **kw).shape
    cols = rng.standard_normal(n_cols).astype(dtype)
    flat = cols.reshape(-1)
    flat[rng.choice(flat.size, 30, replace=False)] = -0.0
    flat[rng.choice(flat.size, 3, replace=False)] = np.inf
    flat[rng.choice(flat.size, 3, replace=False)] = np.nan
    ints = rng.integers(-9, 10, n_cols).astype(dtype)
    got, got_int = {}, {}
    for isa in gemm_isas():
        _kernels.set_isa(isa)
        got[isa] = fastconv.col2im(cols, shape[2:], k, **kw)
        got_int[isa] = fastconv.col2im(ints, shape[2:], k, **kw)
    want_int = ref.col2im(ints, shape[2:], k, **kw)
    bits = f"u{np.dtype(dtype).itemsize}"
    first = got[gemm_isas()[0]]
    for isa in got:
        np.testing.assert_array_equal(got[isa].view(bits), first.view(bits), err_msg=isa)
        np.testing.assert_array_equal(got_int[isa], want_int, err_msg=isa)
    finite = np.isfinite(first)
    want = ref.col2im(np.where(np.isfinite(cols), cols, 0), shape[2:], k, **kw)
    np.testing.assert_allclose(first[finite], want[finite], rtol=1e-5, atol=1e-5)
