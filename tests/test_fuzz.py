"""Fuzzing: random valid and invalid arguments thrown at every public function.

For every call, either both the native API and the reference raise a clean
Python exception of the same type, or both succeed and agree. Never a crash,
a hang or a silently different answer. The number of examples is bounded
(FASTCONV_FUZZ_EXAMPLES, default 150 per function) so it runs in CI.

Convolutions run every algorithm, each with its own share of examples (2/5 of
FASTCONV_FUZZ_EXAMPLES): Winograd's draws get a 3x3 stride-1 geometry (unless a later
corruption breaks it, and then the native call must raise Winograd's ValueError where
the reference succeeds). The data are small
integers, so every algorithm's sums are exact and must equal the reference's bit
for bit, except Winograd's (its transforms have fractional coefficients), which is
held to its rounding bound against the exact float64 result (tests/oracles.py).
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import reference
from oracles import assert_rounding_close, C_SUM, C_WINOGRAD, conv_exact

EXAMPLES = int(os.environ.get("FASTCONV_FUZZ_EXAMPLES", "150"))
CLEAN = (ValueError, TypeError, OverflowError, MemoryError)
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

dtypes = st.sampled_from([np.float32, np.float64, np.float32, np.float64, np.float16, np.int32,
                          np.bool_, np.complex64])
small = st.integers(-2, 9)
pairs = st.one_of(small, st.tuples(small, small), st.just(1.5), st.just((1, 2, 3)), st.just(None))
paddings = st.one_of(st.integers(-1, 4), st.tuples(st.integers(-1, 3), st.integers(-1, 3)),
                     st.sampled_from(["same", "valid", "full"]))


@st.composite
def arrays(draw, ndim=None, dtype=None):
    nd = draw(st.sampled_from([4, 4, 4, 3, 2])) if ndim is None else ndim
    shape = tuple(draw(st.integers(0 if i < 2 else 0, 9)) for i in range(nd))
    dt = draw(dtypes) if dtype is None else dtype
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = rng.integers(-4, 5, size=shape).astype(dt)
    layout = draw(st.sampled_from(["c", "c", "f", "rev", "be"]))
    if layout == "f":
        a = np.asfortranarray(a)
    elif layout == "rev" and a.ndim:
        a = a[::-1].copy()[::-1]
    elif layout == "be" and a.dtype.kind == "f":
        a = a.astype(a.dtype.newbyteorder(">"))
    return a


def _allclose(got, want):
    for g, w in zip(got, want):
        if w is None:
            continue
        tol = 1e-4 if g.dtype == np.float32 else 1e-10
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * max(1.0, float(np.abs(w).max(initial=0))))


def _compare(fn_native, fn_ref, close=_allclose, native_error=None, label=""):
    """Run both; they must raise the same clean exception type or agree (``close`` compares
    the results). ``native_error``: (type, regex) the native call must raise whenever the
    reference succeeds."""
    try:
        want = fn_ref()
    except CLEAN as e:
        event(f"rejected: {type(e).__name__}")
        with pytest.raises(type(e)):
            fn_native()
        return
    if native_error is not None:
        event(f"valid, rejected by {label}".strip())
        with pytest.raises(native_error[0], match=native_error[1]):
            fn_native()
        return
    event(f"valid {label}".strip())
    got = fn_native()
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
            continue
        assert g.shape == w.shape and g.dtype == w.dtype
    close(got, want)


def _rand(draw, shape, dtype):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.integers(-4, 5, size=shape).astype(dtype)


ALGOS = ("auto", "im2col", "direct", "gemm", "winograd")
CONV_FUZZ = settings(FUZZ, max_examples=max(10, EXAMPLES * 2 // 5))


@st.composite
def conv_args(draw, algo="auto"):
    """Mostly-valid convolution arguments for ``algo``; about half the draws corrupt one
    argument. For Winograd, a 3x3 kernel with stride 1 and dilation 1."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C, K = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    wino = algo == "winograd"
    R, S = (3, 3) if wino else (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    H, W = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    args = dict(x=_rand(draw, (draw(st.integers(0, 3)), C, H, W), dtype),
                w=_rand(draw, (K, C // groups, R, S), dtype),
                b=_rand(draw, (K,), dtype) if draw(st.booleans()) else None,
                stride=1 if wino else draw(st.integers(1, 3)), padding=draw(st.integers(0, 2)),
                dilation=1 if wino else draw(st.integers(1, 2)), groups=groups)
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(args)))
        args[key] = draw({"x": arrays(), "w": arrays(), "b": st.one_of(st.none(), arrays(ndim=1)),
                          "stride": pairs, "padding": paddings, "dilation": pairs,
                          "groups": st.integers(-1, 4)}[key])
    return args


def _is_one(v):
    return type(v) is int and v == 1 or type(v) is tuple and v == (1, 1)


def _winograd_geometry(args):
    w = args["w"]
    return (isinstance(w, np.ndarray) and w.ndim == 4 and w.shape[2:] == (3, 3)
            and _is_one(args["stride"]) and _is_one(args["dilation"]))


def _conv_checks(algo, args, x, w, b=None, dy=None):
    """(close, native_error) for _compare: bit-for-bit equality on the integer data, or
    Winograd's rounding bound; Winograd's ValueError for a geometry it does not take."""
    if algo != "winograd":
        def exact(got, want):
            for g, r in zip(got, want):
                if r is not None:
                    np.testing.assert_array_equal(g, r)
        return exact, None
    if not _winograd_geometry(args):
        return None, (ValueError, "winograd.*needs a 3x3 kernel")

    def rounding(got, want):
        kw = {k: args[k] for k in ("stride", "padding", "dilation", "groups")}
        ex = conv_exact(x, w, b, dy, **kw)
        for name, g in zip(("y",) if dy is None else ("dx", "dw", "db"), got):
            if g is None:
                continue
            c, spread = (C_SUM, False) if name == "db" else (C_WINOGRAD, True)
            assert_rounding_close(g, ex[name], g.dtype, c, spread, what=f"winograd {name}")
    return rounding, None


@pytest.mark.parametrize("algo", ALGOS)
@CONV_FUZZ
@given(data=st.data())
def test_fuzz_conv2d(algo, data):
    args = data.draw(conv_args(algo), label="args")
    x, w, b = args.pop("x"), args.pop("w"), args.pop("b")
    x0, w0 = x.copy(), w.copy()
    close, native_error = _conv_checks(algo, dict(args, w=w), x, w, b)
    _compare(lambda: fastconv.conv2d(x, w, b, algo=algo, **args),
             lambda: reference.conv2d(x, w, b, **args), close, native_error, algo)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


@pytest.mark.parametrize("algo", ALGOS)
@CONV_FUZZ
@given(data=st.data(), dy=arrays(), need_dx=st.booleans(), need_db=st.booleans(),
       any_dy=st.integers(0, 3))
def test_fuzz_conv2d_backward(algo, data, dy, need_dx, need_db, any_dy):
    args = data.draw(conv_args(algo), label="args")
    x, w, _ = args.pop("x"), args.pop("w"), args.pop("b")
    if any_dy:   # 3 times in 4 a dy of the right shape, so valid calls are exercised
        try:
            y = reference.conv2d(x, w, **args)
            dy = np.arange(y.size, dtype=y.dtype).reshape(y.shape) % 7 - 3
        except CLEAN:
            pass
    close, native_error = _conv_checks(algo, dict(args, w=w), x, w, None, dy)
    _compare(lambda: fastconv.conv2d_backward(dy, x, w, need_dx=need_dx, need_db=need_db,
                                              algo=algo, **args),
             lambda: reference.conv2d_backward(dy, x, w, need_dx=need_dx, need_db=need_db,
                                               **args), close, native_error, algo)


@st.composite
def pool_args(draw):
    """Mostly-valid pooling arguments; about half the draws corrupt one of them."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    k = draw(st.integers(1, 4))
    args = dict(x=_rand(draw, (draw(st.integers(0, 3)), draw(st.integers(1, 4)),
                               draw(st.integers(1, 10)), draw(st.integers(1, 10))), dtype),
                k=k, stride=draw(st.one_of(st.none(), st.integers(1, 3))),
                padding=draw(st.integers(0, k // 2)), dilation=draw(st.integers(1, 2)),
                ceil=draw(st.booleans()))
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(args)))
        args[key] = draw({"x": arrays(), "k": pairs, "stride": pairs, "padding": pairs,
                          "dilation": pairs, "ceil": st.sampled_from([2, None, "x"])}[key])
    return args


@FUZZ
@given(args=pool_args(), cip=st.booleans())
def test_fuzz_pooling(args, cip):
    x, k, stride, padding, dilation, ceil = (args[n] for n in
                                             ("x", "k", "stride", "padding", "dilation", "ceil"))
    _compare(lambda: fastconv.max_pool2d(x, k, stride, padding, dilation, ceil, return_indices=True),
             lambda: reference.max_pool2d(x, k, stride, padding, dilation, ceil, return_indices=True))
    _compare(lambda: fastconv.avg_pool2d(x, k, stride, padding, ceil, cip),
             lambda: reference.avg_pool2d(x, k, stride, padding, ceil, cip))
    try:
        y, idx = reference.max_pool2d(x, k, stride, padding, dilation, ceil, return_indices=True)
        a = reference.avg_pool2d(x, k, stride, padding, ceil, cip)
    except CLEAN:
        return
    _compare(lambda: fastconv.max_pool2d_backward(y, idx, x.shape),
             lambda: reference.max_pool2d_backward(y, idx, x.shape))
    _compare(lambda: fastconv.avg_pool2d_backward(a, x.shape, k, stride, padding, ceil, cip),
             lambda: reference.avg_pool2d_backward(a, x.shape, k, stride, padding, ceil, cip))


@FUZZ
@given(args=pool_args())
def test_fuzz_im2col_col2im(args):
    x, k, stride, padding, dilation = (args[n] for n in ("x", "k", "stride", "padding", "dilation"))
    _compare(lambda: fastconv.im2col(x, k, stride, padding, dilation),
             lambda: reference.im2col(x, k, stride, padding, dilation))
    try:
        cols = reference.im2col(x, k, stride, padding, dilation)
    except CLEAN:
        cols = x if x.ndim == 3 else np.ones((1, 4, 4), np.float32)
    size = x.shape[2:4] if x.ndim == 4 else (3, 3)
    _compare(lambda: fastconv.col2im(cols, size, k, stride, padding, dilation),
             lambda: reference.col2im(cols, size, k, stride, padding, dilation))


@FUZZ
@given(x=arrays(), dy=arrays())
def test_fuzz_relu(x, dy):
    _compare(lambda: fastconv.relu(x), lambda: reference.relu(x))
    _compare(lambda: fastconv.relu_backward(dy, x), lambda: reference.relu_backward(dy, x))


@st.composite
def linear_args(draw):
    """Mostly matching (N, in) / (out, in) / (out,) / (N, out) shapes, sometimes not."""
    n, fin, fout = (draw(st.integers(0, 9)) for _ in range(3))
    dt = draw(st.sampled_from([np.float32, np.float64, np.float32, np.float16]))

    def arr(shape):
        if draw(st.integers(0, 9)) == 0:      # a wrong shape or dtype now and then
            return draw(arrays())
        return _rand(draw, shape, dt)

    b = draw(st.one_of(st.just(None), st.just("b")))
    return arr((n, fin)), arr((fout, fin)), (None if b is None else arr((fout,))), arr((n, fout))


@FUZZ
@given(args=linear_args(), need=st.tuples(st.booleans(), st.booleans()))
def test_fuzz_linear(args, need):
    x, w, b, dy = args
    _compare(lambda: fastconv.linear(x, w, b), lambda: reference.linear(x, w, b))
    _compare(lambda: fastconv.linear_backward(dy, x, w, *need),
             lambda: reference.linear_backward(dy, x, w, *need))
