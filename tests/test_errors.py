"""Bad input: every check a user can trip raises a clear Python error and writes nothing.

Each case runs against both the native API and the reference, which share
their validation (fastconv/_args.py), so both reject the same inputs with the
same message.
"""

import numpy as np
import pytest

import fastconv
from fastconv import reference

APIS = [pytest.param(fastconv, id="native"), pytest.param(reference, id="reference")]


def _x(shape=(2, 4, 8, 8), dtype=np.float32):
    return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape) / 7.0


def _w(shape=(6, 4, 3, 3), dtype=np.float32):
    return np.ones(shape, dtype)


def _snapshot(*args):
    """The arrays among ``args`` with a copy of each: compare the very objects passed in
    with their copies after the call (nothing may be written)."""
    return [(a, a.copy()) for a in args if isinstance(a, np.ndarray)]


def _assert_untouched(snapshot):
    for a, before in snapshot:
        np.testing.assert_array_equal(a, before)
        assert a.dtype == before.dtype and a.shape == before.shape


CONV_ERRORS = [
    # (description, kwargs for conv2d, exception, message regex)
    ("x 3-d", dict(x=_x((4, 8, 8))), ValueError, r"x must be a 4-d array"),
    ("w 3-d", dict(w=_w((6, 4, 3))), ValueError, r"w must be a 4-d array"),
    ("channel mismatch", dict(w=_w((6, 3, 3, 3))), ValueError, r"expected w.shape\[1\] == C/groups = 4"),
    ("groups not dividing C", dict(w=_w((6, 1, 3, 3)), groups=3), ValueError, r"not divisible by groups=3"),
    ("groups not dividing K", dict(w=_w((5, 2, 3, 3)), groups=2), ValueError, r"5 output channels.*groups=2"),
    ("groups 0", dict(groups=0), ValueError, r"groups must be positive"),
    ("kernel too big", dict(w=_w((6, 4, 9, 3))), ValueError, r"larger than the padded input"),
    ("dilated kernel too big", dict(dilation=4), ValueError, r"larger than the padded input"),
    ("stride 0", dict(stride=0), ValueError, r"stride must be positive"),
    ("stride negative", dict(stride=(1, -2)), ValueError, r"stride must be positive"),
    ("dilation 0", dict(dilation=0), ValueError, r"dilation must be positive"),
    ("negative padding", dict(padding=-1), ValueError, r"padding must be >= 0"),
    ("same with stride 2", dict(padding="same", stride=2), ValueError, r'padding="same" needs stride 1'),
    ("bad padding string", dict(padding="full"), ValueError, r'"valid" or "same"'),
    ("stride float", dict(stride=1.5), TypeError, r"stride must be an int"),
    ("stride bool", dict(stride=True), TypeError, r"stride must be an int, got bool"),
    ("stride triple", dict(stride=(1, 1, 1)), ValueError, r"stride must be an int or a pair"),
    ("mixed dtypes", dict(w=_w(dtype=np.float64)), TypeError, r"w has dtype float64 but x has dtype float32"),
    ("int input", dict(x=np.ones((2, 4, 8, 8), np.int32)), TypeError, r"x must have dtype float32 or float64"),
    ("bool input", dict(x=np.ones((2, 4, 8, 8), bool)), TypeError, r"float32 or float64, got bool"),
    ("complex input", dict(x=np.ones((2, 4, 8, 8), np.complex64)), TypeError, r"float32 or float64"),
    ("float16 input", dict(x=np.ones((2, 4, 8, 8), np.float16)), TypeError, r"float32 or float64"),
    ("object input", dict(x=np.ones((2, 4, 8, 8), object)), TypeError, r"float32 or float64"),
    ("list input", dict(x=[[1.0]]), TypeError, r"x must be a numpy.ndarray"),
    ("bias shape", dict(b=np.ones(5, np.float32)), ValueError, r"b must have shape \(6,\)"),
    ("bias dtype", dict(b=np.ones(6, np.float64)), TypeError, r"b has dtype float64"),
    ("C = 0", dict(x=np.ones((2, 0, 8, 8), np.float32), w=_w((6, 0, 3, 3))), ValueError, r"C, H and W >= 1"),
    ("H = 0", dict(x=np.ones((2, 4, 0, 8), np.float32)), ValueError, r"C, H and W >= 1"),
    ("bad algo", dict(algo="fft"), ValueError, r"algo must be one of"),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("desc,kw,exc,msg", CONV_ERRORS, ids=[c[0] for c in CONV_ERRORS])
def test_conv2d_rejects(api, desc, kw, exc, msg):
    args = dict(x=_x(), w=_w(), b=None)
    args.update(kw)
    x, w, b = args.pop("x"), args.pop("w"), args.pop("b")
    passed = _snapshot(x, w, b)
    with pytest.raises(exc, match=msg):
        api.conv2d(x, w, b, **args)
    _assert_untouched(passed)


@pytest.mark.parametrize("api", APIS)
def test_conv2d_backward_rejects(api):
    x, w = _x(), _w()
    dy = np.ones((2, 6, 6, 6), np.float32)
    bad_dy = [np.ones((2, 6, 5, 6), np.float32), dy.astype(np.float64), dy[0]]
    passed = _snapshot(x, w, dy, *bad_dy)
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 6, 6, 6\)"):
        api.conv2d_backward(bad_dy[0], x, w)
    with pytest.raises(TypeError, match=r"dtype"):
        api.conv2d_backward(bad_dy[1], x, w)
    with pytest.raises(ValueError, match=r"dy must be a 4-d array"):
        api.conv2d_backward(bad_dy[2], x, w)
    with pytest.raises(ValueError, match=r"stride must be positive"):
        api.conv2d_backward(dy, x, w, stride=0)
    _assert_untouched(passed)


POOL_ERRORS = [
    ("kernel 0", dict(kernel_size=0), ValueError, r"kernel_size must be positive"),
    ("stride 0", dict(kernel_size=2, stride=0), ValueError, r"stride must be positive"),
    ("negative padding", dict(kernel_size=3, padding=-1), ValueError, r"padding must be >= 0"),
    ("padding over half", dict(kernel_size=2, padding=2), ValueError, r"at most half"),
    ("kernel too big", dict(kernel_size=9), ValueError, r"larger than the padded input"),
    ("ceil_mode not bool", dict(kernel_size=2, ceil_mode="yes"), TypeError, r"ceil_mode must be a bool"),
    ("x 3-d", dict(kernel_size=2, x=np.ones((4, 8, 8), np.float32)), ValueError, r"4-d array"),
    ("int x", dict(kernel_size=2, x=np.ones((1, 1, 8, 8), np.int64)), TypeError, r"float32 or float64"),
    ("H = 0", dict(kernel_size=1, x=np.ones((1, 1, 0, 8), np.float32)), ValueError, r"C, H and W >= 1"),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("desc,kw,exc,msg", POOL_ERRORS, ids=[c[0] for c in POOL_ERRORS])
def test_pooling_rejects(api, pool, desc, kw, exc, msg):
    kw = dict(kw)
    x = kw.pop("x", _x())
    passed = _snapshot(x)
    with pytest.raises(exc, match=msg):
        getattr(api, pool)(x, **kw)
    _assert_untouched(passed)


@pytest.mark.parametrize("api", APIS)
def test_max_pool_dilated_window_in_padding_only(api):
    with pytest.raises(ValueError, match="covers only padding"):
        api.max_pool2d(np.ones((1, 1, 1, 2), np.float32), (1, 2), padding=(0, 1), dilation=(1, 3))


@pytest.mark.parametrize("api", APIS)
def test_max_pool_backward_rejects_bad_indices(api):
    x = _x((1, 2, 4, 4))
    y, idx = api.max_pool2d(x, 2, return_indices=True)
    dy = np.ones_like(y)
    passed = _snapshot(dy, idx)
    for bad in (16, -1, 2**40):
        wrong = idx.copy()
        wrong[0, 1, 1, 0] = bad
        wrong_passed = _snapshot(wrong)
        with pytest.raises(ValueError, match=r"outside \[0, H\*W\)"):
            api.max_pool2d_backward(dy, wrong, x.shape)
        _assert_untouched(wrong_passed)
    with pytest.raises(TypeError, match="integer"):
        api.max_pool2d_backward(dy, idx.astype(np.float32), x.shape)
    with pytest.raises(ValueError, match="idx must have shape"):
        api.max_pool2d_backward(dy, idx[:, :, :1], x.shape)
    with pytest.raises(ValueError, match="x_shape"):
        api.max_pool2d_backward(dy, idx, (1, 3, 4, 4))
    _assert_untouched(passed)


@pytest.mark.parametrize("api", APIS)
def test_avg_pool_backward_rejects_wrong_dy(api):
    dy = np.ones((1, 2, 3, 2), np.float32)
    passed = _snapshot(dy)
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 2, 2, 2\)"):
        api.avg_pool2d_backward(dy, (1, 2, 4, 4), 2)
    _assert_untouched(passed)


@pytest.mark.parametrize("api", APIS)
def test_im2col_col2im_reject(api):
    x, c10, c8 = _x((1, 1, 2, 2)), np.ones((1, 10, 4), np.float32), np.ones((1, 8, 5), np.float32)
    passed = _snapshot(x, c10, c8)
    with pytest.raises(ValueError, match="larger than the padded input"):
        api.im2col(x, 3)
    with pytest.raises(ValueError, match="multiple of the kernel area"):
        api.col2im(c10, (3, 3), 2)
    with pytest.raises(ValueError, match="does not match"):
        api.col2im(c8, (3, 3), 2)
    _assert_untouched(passed)


@pytest.mark.parametrize("api", APIS)
def test_relu_rejects(api):
    a8, a3, a4, a3f = np.ones(3, np.int8), np.ones(3), np.ones(4), np.ones(3, np.float32)
    passed = _snapshot(a8, a3, a4, a3f)
    with pytest.raises(TypeError, match="float32 or float64"):
        api.relu(a8)
    with pytest.raises(ValueError, match="dy must have shape"):
        api.relu_backward(a3, a4)
    with pytest.raises(TypeError, match="dtype"):
        api.relu_backward(a3f, a3)
    _assert_untouched(passed)


def test_overflowing_shapes_raise_not_crash():
    # A broadcast view: a huge logical shape that occupies 4 bytes of memory.
    # x is 2**44 elements (a broadcast view, 4 bytes of memory); the output would be
    # N*K*P*Q = 2**20 * 2**20 * 2**24 = 2**64 elements, which overflows int64.
    x = np.broadcast_to(np.float32(1), (2**20, 1, 2**12, 2**12))
    w = np.broadcast_to(np.float32(1), (2**20, 1, 1, 1))
    for api in (fastconv, reference):
        with pytest.raises(OverflowError, match="output"):
            api.conv2d(x, w)


def test_unallocatable_output_is_memory_error():
    # Output of 2**40 float64 elements (8 TiB): a MemoryError, never a crash.
    x = np.broadcast_to(np.float64(1), (2**14, 1, 2**13, 2**13))
    with pytest.raises(MemoryError):
        fastconv.conv2d(x, np.ones((1, 1, 1, 1)))


def test_empty_batch_gives_empty_results():
    x = np.zeros((0, 2, 5, 5), np.float32)
    assert fastconv.max_pool2d(x, 2).shape == (0, 2, 2, 2)
    assert fastconv.avg_pool2d(x, 2).shape == (0, 2, 2, 2)
    assert fastconv.im2col(x, 2).shape == (0, 8, 16)
    assert fastconv.relu(x).shape == x.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_propagate_through_conv(dtype):
    x = np.zeros((1, 1, 5, 5), dtype)
    x[0, 0, 2, 2] = np.nan
    x[0, 0, 0, 0] = np.inf
    w = np.ones((1, 1, 3, 3), dtype)
    for algo in ("im2col", "direct"):
        y = fastconv.conv2d(x, w, padding=1, algo=algo)
        want = reference.conv2d(x, w, padding=1)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(y), np.isinf(want))


@pytest.mark.parametrize("algo", ["auto", "gemm", "direct", "im2col"])
@pytest.mark.parametrize("where", ["x", "w", "dy"])
@pytest.mark.parametrize("stride, padding", [(1, 1), (1, 0), (2, 1)])
def test_inf_and_nan_spread_exactly_as_the_reference(algo, where, stride, padding):
    """Every algorithm but Winograd: an inf or NaN anywhere gives inf / NaN exactly where
    the reference has them (GEMM's stride-1 backward-data switches to its columns
    method when a weight is not finite)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 16, 12, 12)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    P = (12 + 2 * padding - 3) // stride + 1
    dy = rng.standard_normal((4, 16, P, P)).astype(np.float32)
    a = {"x": x, "w": w, "dy": dy}[where]
    a[0, 0, 2, 2] = np.inf
    a[1, 3, 1, 0] = -np.inf
    a[2, 5, 0, 1] = np.nan
    kw = dict(stride=stride, padding=padding)
    got = [fastconv.conv2d(x, w, **kw, algo=algo)] + list(fastconv.conv2d_backward(dy, x, w, **kw, algo=algo))
    want = [reference.conv2d(x, w, **kw)] + list(reference.conv2d_backward(dy, x, w, **kw))
    for g, r in zip(got, want):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(r))
        np.testing.assert_array_equal(np.isinf(g), np.isinf(r))
        fin = np.isfinite(r)
        np.testing.assert_allclose(g[fin], r[fin], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("where", ["x", "w", "dy"])
def test_auto_propagates_inf_and_nan_as_the_reference_on_winograd_layers(where):
    """A layer auto sends to Winograd (or GEMM): one inf/NaN must not spread further
    than the reference spreads it (a Winograd tile, a zero-padding product)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 16, 16, 16)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((8, 16, 16, 16)).astype(np.float32)
    a = {"x": x, "w": w, "dy": dy}[where]
    a[0, 0, 2, 2] = np.inf
    a[1, 3, 1, 0] = np.nan
    got = [fastconv.conv2d(x, w, padding=1)] + list(fastconv.conv2d_backward(dy, x, w, padding=1))
    want = [reference.conv2d(x, w, padding=1)] + list(reference.conv2d_backward(dy, x, w, padding=1))
    for g, r in zip(got, want):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(r))
        np.testing.assert_array_equal(np.isinf(g), np.isinf(r))


def test_misaligned_and_odd_layouts_give_the_same_answer():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 9))
    raw = np.zeros(x.nbytes + 1, np.uint8)
    mis = raw[1:].view(np.float64).reshape(x.shape)     # misaligned by one byte
    mis[...] = x
    assert not mis.flags.aligned
    w = rng.standard_normal((4, 3, 3, 3))
    want = fastconv.conv2d(x, w)
    for xv in (mis, np.asfortranarray(x), x[::-1][::-1], x.astype(">f8")):
        before = xv.copy()
        np.testing.assert_array_equal(fastconv.conv2d(xv, w), want)
        np.testing.assert_array_equal(fastconv.max_pool2d(xv, 2), fastconv.max_pool2d(x, 2))
        np.testing.assert_array_equal(xv, before)
