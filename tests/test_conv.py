"""Native convolution (forward, backward-data, backward-weight, bias) against the reference."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import reference as ref
from conftest import DTYPES, gemm_isas, randn
from oracles import check_conv, conv_exact, grads

ALGOS = ["im2col", "direct", "gemm", "auto"]


@pytest.fixture(scope="module", params=gemm_isas(), autouse=True)
def gemm_isa(request):
    """Every test here runs once under each SIMD variant of the GEMM ("gemm" and "auto")."""
    from fastconv import _kernels

    prev = _kernels.isa()
    _kernels.set_isa(request.param)
    yield request.param
    _kernels.set_isa(prev)


@st.composite
def conv_cases(draw):
    """A valid convolution: batch 1-4, channels 1-8, sizes 1-17, kernels 1-7, stride 1-3,
    padding 0-3 (or "same"/"valid"), dilation 1-3, groups dividing both channel counts."""
    groups = draw(st.sampled_from([1, 1, 1, 2, 3, 4]))
    cg = draw(st.integers(1, max(1, 8 // groups)))
    kg = draw(st.integers(1, max(1, 8 // groups)))
    N = draw(st.integers(1, 4))
    H = draw(st.integers(1, 17))
    W = draw(st.integers(1, 17))
    R = draw(st.integers(1, 7))
    S = draw(st.integers(1, 7))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.one_of(
        st.tuples(st.integers(0, 3), st.integers(0, 3)),
        st.integers(0, 3),
        st.just("valid"),
        st.just("same"),
    ))
    if padding == "same":
        stride = (1, 1)
    pt, pb, pl, pr = fastconv._args.conv_padding(padding, (R, S), dilation, stride)
    assume(H + pt + pb >= dilation[0] * (R - 1) + 1)
    assume(W + pl + pr >= dilation[1] * (S - 1) + 1)
    return dict(N=N, C=cg * groups, H=H, W=W, K=kg * groups, R=R, S=S, groups=groups,
                stride=stride, padding=padding, dilation=dilation)


def _arrays(case, dtype, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, (case["N"], case["C"], case["H"], case["W"]), dtype)
    w = randn(rng, (case["K"], case["C"] // case["groups"], case["R"], case["S"]), dtype)
    b = randn(rng, (case["K"],), dtype)
    return x, w, b


def _kw(case):
    return dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
                groups=case["groups"])


# Results are compared with the exact (float64) reference of the same inputs, to the
# rounding bound of each element (tests/oracles.py); each comparison also proves that its
# tolerance rejects a 1e-3 relative error of that very case.

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", ["im2col", "direct", "gemm"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=conv_cases(), seed=st.integers(0, 2**31 - 1), use_bias=st.booleans())
def test_conv2d_matches_reference(case, seed, use_bias, algo, dtype):
    x, w, b = _arrays(case, dtype, seed)
    b = b if use_bias else None
    y = fastconv.conv2d(x, w, b, algo=algo, **_kw(case))
    check_conv({"y": y}, conv_exact(x, w, b, **_kw(case)), dtype, what=algo)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", ["im2col", "direct", "gemm"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(case=conv_cases(), seed=st.integers(0, 2**31 - 1), need_dx=st.booleans(),
       need_db=st.booleans())
def test_conv2d_backward_matches_reference(case, seed, need_dx, need_db, algo, dtype):
    x, w, _ = _arrays(case, dtype, seed)
    y = ref.conv2d(x, w, **_kw(case))
    dy = randn(np.random.default_rng(seed + 1), y.shape, dtype)
    dx, dw, db = fastconv.conv2d_backward(dy, x, w, need_dx=need_dx, need_db=need_db, algo=algo,
                                          **_kw(case))
    assert (dx is None) == (not need_dx) and (db is None) == (not need_db)
    check_conv(dict(dx=dx, dw=dw, db=db), conv_exact(x, w, None, dy, **_kw(case)), dtype,
               what=algo)


@pytest.mark.parametrize("dtype", DTYPES)
def test_integer_valued_inputs_are_exact(dtype):
    """Integer-valued data makes every float32 partial sum exact: both algos equal the reference."""
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, (3, 6, 11, 9)).astype(dtype)
    w = rng.integers(-3, 4, (4, 3, 3, 2)).astype(dtype)
    b = rng.integers(-3, 4, (4,)).astype(dtype)
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    y_ref = ref.conv2d(x, w, b, **kw)
    dy = rng.integers(-3, 4, y_ref.shape).astype(dtype)
    grads_ref = ref.conv2d_backward(dy, x, w, **kw)
    for algo in ALGOS:
        np.testing.assert_array_equal(fastconv.conv2d(x, w, b, algo=algo, **kw), y_ref)
        for got, want in zip(fastconv.conv2d_backward(dy, x, w, algo=algo, **kw), grads_ref):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize(
    "C,K,groups,R,S,stride,padding,dilation",
    [
        (8, 8, 8, 3, 3, 1, 1, 1),        # depthwise
        (8, 16, 8, 3, 3, 2, 1, 1),       # depthwise with multiplier 2, strided
        (6, 4, 1, 1, 1, 1, 0, 1),        # 1x1
        (3, 5, 1, 2, 4, 1, "same", 1),   # even kernel, "same": extra padding bottom/right
        (4, 6, 2, 3, 3, 1, "same", 2),   # dilated "same"
        (1, 3, 1, 7, 7, 3, 3, 1),
    ],
)
def test_special_shapes(algo, C, K, groups, R, S, stride, padding, dilation):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, C, 13, 10))
    w = rng.standard_normal((K, C // groups, R, S))
    b = rng.standard_normal(K)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    for dtype in DTYPES:
        xd, wd, bd = x.astype(dtype), w.astype(dtype), b.astype(dtype)
        y = fastconv.conv2d(xd, wd, bd, algo=algo, **kw)
        if padding == "same":
            assert y.shape[2:] == x.shape[2:]
        dy = rng.standard_normal(y.shape).astype(dtype)
        got = dict(y=y, **grads(fastconv.conv2d_backward(dy, xd, wd, algo=algo, **kw)))
        check_conv(got, conv_exact(xd, wd, bd, dy, **kw), dtype, what=algo)


def test_empty_batch():
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    y = fastconv.conv2d(x, w)
    assert y.shape == (0, 4, 6, 6)
    dx, dw, db = fastconv.conv2d_backward(np.zeros((0, 4, 6, 6), np.float32), x, w)
    assert dx.shape == x.shape and not dw.any() and not db.any()


def test_large_batch_is_chunked(monkeypatch):
    """The im2col workspace is bounded: a tiny budget forces many chunks, same answer."""
    from fastconv import functional_convpass

    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 3, 9, 9))
    w = rng.standard_normal((4, 3, 3, 3))
    full = fastconv.conv2d(x, w, algo="im2col")
    grads = fastconv.conv2d_backward(np.ones_like(full), x, w, algo="im2col")
    monkeypatch.setattr(functional_convpass, "WORKSPACE_BYTES", 1)
    assert functional_convpass.chunk(fastconv._args.conv_params(x.shape, w.shape), 8) == 1
    np.testing.assert_allclose(fastconv.conv2d(x, w, algo="im2col"), full, rtol=1e-12)
    for got, want in zip(fastconv.conv2d_backward(np.ones_like(full), x, w, algo="im2col"), grads):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def _central_difference(f, a, eps=1e-6):
    g = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = a[i]
        a[i] = old + eps
        fp = f()
        a[i] = old - eps
        fm = f()
        a[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


@pytest.mark.parametrize("algo", ["im2col", "direct", "gemm"])
@pytest.mark.parametrize("kw", [
    dict(stride=1, padding=1, dilation=1, groups=1),
    dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2), groups=2),
    dict(stride=1, padding="same", dilation=1, groups=1),
])
def test_gradcheck_float64(algo, kw):
    """Central differences of L = sum(y * g) match the analytic gradients."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 6, 5))
    w = rng.standard_normal((4, 4 // kw["groups"], 3, 2))
    b = rng.standard_normal(4)
    g = rng.standard_normal(fastconv.conv2d(x, w, b, algo=algo, **kw).shape)

    def loss():
        return float(np.sum(fastconv.conv2d(x, w, b, algo=algo, **kw) * g))

    dx, dw, db = fastconv.conv2d_backward(g, x, w, algo=algo, **kw)
    np.testing.assert_allclose(dx, _central_difference(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dw, _central_difference(loss, w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, _central_difference(loss, b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_algorithms_agree_exactly_on_integer_data(dtype, threads):
    """Integer-valued data: every partial sum is exact, so every algorithm (Winograd's
    fractions aside) gives the same bits at every thread count."""
    rng = np.random.default_rng(4)
    x = rng.integers(-4, 5, (4, 8, 15, 13)).astype(dtype)
    w = rng.integers(-4, 5, (6, 4, 3, 3)).astype(dtype)
    kw = dict(stride=1, padding=1, groups=2)
    results = []
    for n in (1, 2):
        fastconv.set_num_threads(n)
        for algo in ALGOS:
            y = fastconv.conv2d(x, w, algo=algo, **kw)
            results.append((y,) + fastconv.conv2d_backward(y, x, w, algo=algo, **kw))
    for r in results[1:]:
        for a, b in zip(r, results[0]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", ["im2col", "direct", "gemm", "winograd"])
def test_results_bitwise_independent_of_thread_count(algo, dtype, threads):
    """Random (not integer-valued) data, where a different order of summation changes
    the last bits: 1, 2 and 3 threads give identical results (the weight and bias
    gradients are reduced in a fixed order)."""
    rng = np.random.default_rng(4)
    x = randn(rng, (5, 8, 15, 13), dtype)
    w = randn(rng, (6, 4, 3, 3), dtype)
    b = randn(rng, (6,), dtype)
    kw = dict(stride=1, padding=1, groups=2)
    dy = randn(rng, (5, 6, 15, 13), dtype)
    results = []
    for n in (1, 2, 3):
        fastconv.set_num_threads(n)
        results.append((fastconv.conv2d(x, w, b, algo=algo, **kw),)
                       + fastconv.conv2d_backward(dy, x, w, algo=algo, **kw))
    for r in results[1:]:
        for a, want in zip(r, results[0]):
            assert a.tobytes() == want.tobytes()
    # and the answer is right: not, say, one thread's share of it
    check_conv(dict(y=results[0][0], **grads(results[0][1:])), conv_exact(x, w, b, dy, **kw),
               dtype, winograd=algo == "winograd", what=algo)


def test_any_layout_gives_the_same_answer():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 10, 12)).astype(np.float32)
    w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    want = fastconv.conv2d(x, w, padding=1)
    layouts = [
        np.asfortranarray(x),
        x[:, :, ::-1, ::-1].copy()[:, :, ::-1, ::-1],      # negative strides
        x.astype(x.dtype.newbyteorder(">")),                # non-native byte order
        np.repeat(x, 2, axis=3)[..., ::2],                  # strided view
    ]
    ro = x.copy()
    ro.flags.writeable = False
    layouts.append(ro)
    for xv in layouts:
        before = xv.copy()
        np.testing.assert_array_equal(fastconv.conv2d(xv, w, padding=1), want)
        np.testing.assert_array_equal(xv, before)
