"""fastconv.linear / linear_backward (fastconv's own GEMM, or NumPy's matmul under the
generic ISA) against oracles that share no code with either: hand-worked values, exact
int64 einsums on integer data, and float64 einsums with each element's rounding bound
(tests/oracles.py). fastconv.reference.linear (NumPy's matmul, the very code the native
path runs under the generic ISA) is checked against the same oracles; torch is an extra
layer when installed."""

import numpy as np
import pytest

import fastconv
from fastconv import _kernels as K
from fastconv import reference as ref
from conftest import DTYPES, gemm_isas, randn
from oracles import Exact, a64, check, f64

APIS = [fastconv, ref]


@pytest.fixture(params=gemm_isas())
def isa(request):
    prev = K.isa()
    K.set_isa(request.param)
    yield request.param
    K.set_isa(prev)


def _ints(rng, shape, dtype):
    # small integers: every float32 sum below is exact, so results must match bitwise
    return rng.integers(-4, 5, size=shape).astype(dtype)


SHAPES = [  # (N, in_features, out_features)
    (1, 1, 1), (3, 5, 7), (64, 800, 500), (64, 500, 10), (17, 33, 65), (2, 300, 1),
    (0, 4, 3), (5, 0, 3), (5, 4, 0),
]


def _exact_int(x, w, b=None, dy=None):
    """y, dx, dw, db of integer-valued arrays, exactly, with int64 einsums."""
    x, w = x.astype(np.int64), w.astype(np.int64)
    y = np.einsum("nk,ok->no", x, w) + (0 if b is None else b.astype(np.int64))
    if dy is None:
        return y
    dy = dy.astype(np.int64)
    return (y, np.einsum("no,ok->nk", dy, w), np.einsum("no,nk->ok", dy, x), dy.sum(axis=0))


def _exact(x, w, b, dy):
    """Exact (float64 einsum) results and the sums of their terms' magnitudes."""
    n = x.shape[0]
    y = Exact(np.einsum("nk,ok->no", f64(x), f64(w)) + f64(b),
              np.einsum("nk,ok->no", a64(x), a64(w)) + a64(b), x.shape[1] + 1)
    dx = Exact(np.einsum("no,ok->nk", f64(dy), f64(w)), np.einsum("no,ok->nk", a64(dy), a64(w)),
               w.shape[0])
    dw = Exact(np.einsum("no,nk->ok", f64(dy), f64(x)), np.einsum("no,nk->ok", a64(dy), a64(x)), n)
    db = Exact(f64(dy).sum(axis=0), a64(dy).sum(axis=0), n)
    return y, dx, dw, db


# y = x @ w.T + b, worked by hand:
#   x = [[1, 2],     w = [[1,  0],     b = [0.5, -1, 2]
#        [3, 4]]          [0,  1],
#                         [1, -1]]
#   y[0] = [1*1 + 2*0, 1*0 + 2*1, 1*1 - 2*1] + b = [1, 2, -1] + b = [1.5, 1, 1]
#   y[1] = [3, 4, 3 - 4] + b = [3.5, 3, 1]
# with dy = [[1, 0, 2], [0, 1, -1]]:
#   dx = dy @ w:   dx[0] = 1*[1, 0] + 2*[1, -1] = [3, -2];  dx[1] = [0, 1] - [1, -1] = [-1, 2]
#   dw = dy.T @ x: dw[0] = 1*[1, 2] = [1, 2];  dw[1] = 1*[3, 4] = [3, 4];
#                  dw[2] = 2*[1, 2] - 1*[3, 4] = [-1, 0]
#   db = dy summed over the batch = [1, 1, 1]
HAND = dict(x=[[1, 2], [3, 4]], w=[[1, 0], [0, 1], [1, -1]], b=[0.5, -1, 2],
            dy=[[1, 0, 2], [0, 1, -1]], y=[[1.5, 1, 1], [3.5, 3, 1]], dx=[[3, -2], [-1, 2]],
            dw=[[1, 2], [3, 4], [-1, 0]], db=[1, 1, 1], y_no_bias=[[1, 2, -1], [3, 4, -1]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("api", APIS, ids=["native", "reference"])
def test_linear_hand_worked(api, dtype, isa):
    x, w, b, dy = (np.array(HAND[k], dtype) for k in ("x", "w", "b", "dy"))
    y = api.linear(x, w, b)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, HAND["y"])
    np.testing.assert_array_equal(api.linear(x, w), HAND["y_no_bias"])
    dx, dw, db = api.linear_backward(dy, x, w)
    np.testing.assert_array_equal(dx, HAND["dx"])
    np.testing.assert_array_equal(dw, HAND["dw"])
    np.testing.assert_array_equal(db, HAND["db"])


def _check_exact_on_integers(api, dtype, shape):
    """Small integers: every float32 sum is exact, so the results must equal the int64
    einsum bit for bit."""
    n, fin, fout = shape
    rng = np.random.default_rng(sum(shape))
    x, w, b, dy = (_ints(rng, s, dtype) for s in ((n, fin), (fout, fin), (fout,), (n, fout)))
    y_ex, dx_ex, dw_ex, db_ex = _exact_int(x, w, b, dy)
    for bias, want in ((b, y_ex), (None, _exact_int(x, w))):
        y = api.linear(x, w, bias)
        assert y.shape == (n, fout) and y.dtype == dtype
        np.testing.assert_array_equal(y, want)
    for need_dx in (True, False):
        for need_db in (True, False):
            dx, dw, db = api.linear_backward(dy, x, w, need_dx=need_dx, need_db=need_db)
            assert (dx is None) == (not need_dx) and (db is None) == (not need_db)
            for got, want in ((dx, dx_ex), (dw, dw_ex), (db, db_ex)):
                if got is not None:
                    assert got.shape == want.shape and got.dtype == dtype
                    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("nt", [1, 2])
def test_linear_exact_on_integers(dtype, shape, nt, isa, threads):
    fastconv.set_num_threads(nt)
    _check_exact_on_integers(fastconv, dtype, shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_reference_linear_exact_on_integers(dtype, shape):
    _check_exact_on_integers(ref, dtype, shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("api", APIS, ids=["native", "reference"])
def test_linear_matches_exact_on_random_data(api, dtype, isa):
    """Random data, where the order of summation shows: each element within its rounding
    bound of the exact float64 einsum (and the bound rejects a 1e-3 relative error)."""
    rng = np.random.default_rng(7)
    x, w, b, dy = (randn(rng, s, dtype) for s in ((37, 129), (71, 129), (71,), (37, 71)))
    y_ex, dx_ex, dw_ex, db_ex = _exact(x, w, b, dy)
    check(api.linear(x, w, b), y_ex, dtype, what="y")
    dx, dw, db = api.linear_backward(dy, x, w)
    check(dx, dx_ex, dtype, what="dx")
    check(dw, dw_ex, dtype, what="dw")
    check(db, db_ex, dtype, what="db")


def test_linear_is_bitwise_independent_of_thread_count(threads):
    rng = np.random.default_rng(8)
    x, w, dy = (randn(rng, s, np.float32) for s in ((64, 800), (500, 800), (64, 500)))
    out = []
    for nt in (1, 2):
        fastconv.set_num_threads(nt)
        out.append((fastconv.linear(x, w),) + fastconv.linear_backward(dy, x, w, need_db=False)[:2])
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_linear_gradcheck_float64():
    rng = np.random.default_rng(9)
    x, w, b = randn(rng, (4, 6), np.float64), randn(rng, (5, 6), np.float64), randn(rng, (5,), np.float64)
    g = randn(rng, (4, 5), np.float64)           # loss = sum(g * linear(x, w, b))
    dx, dw, db = fastconv.linear_backward(g, x, w)
    eps = 1e-6
    for arr, grad in ((x, dx), (w, dw), (b, db)):
        num = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + eps
            up = np.sum(g * fastconv.linear(x, w, b))
            arr[i] = old - eps
            down = np.sum(g * fastconv.linear(x, w, b))
            arr[i] = old
            num[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, num, rtol=1e-7, atol=1e-8)


def test_linear_any_layout_and_inputs_untouched():
    rng = np.random.default_rng(10)
    x = _ints(rng, (12, 9), np.float32)
    w = _ints(rng, (9, 7), np.float32).T                     # a transposed (Fortran) view
    b = _ints(rng, (14,), np.float32)[::2]                   # strided
    dy = _ints(rng, (12, 7), np.float32).astype(">f4")       # big-endian
    x_ro = x[::-1].copy()[::-1]                               # negative strides
    x_ro.flags.writeable = False
    saved = [a.copy() for a in (x_ro, w, b, dy)]
    np.testing.assert_array_equal(fastconv.linear(x_ro, w, b), ref.linear(x_ro, w, b))
    for g, e in zip(fastconv.linear_backward(dy, x_ro, w), ref.linear_backward(dy, x_ro, w)):
        np.testing.assert_array_equal(g, e)
        assert g.dtype == np.float32
    for a, s in zip((x_ro, w, b, dy), saved):
        np.testing.assert_array_equal(a, s)


def test_linear_propagates_inf_and_nan_as_the_reference():
    x = np.ones((3, 4), np.float32)
    x[0, 1] = np.inf
    x[2, 3] = np.nan
    w = np.arange(-4.0, 4.0, dtype=np.float32).reshape(2, 4)
    w[1, 1] = 0.0                                             # inf * 0 = NaN, as in a matmul
    dy = np.ones((3, 2), np.float32)
    np.testing.assert_array_equal(fastconv.linear(x, w), ref.linear(x, w))
    for g, e in zip(fastconv.linear_backward(dy, x, w), ref.linear_backward(dy, x, w)):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("api", APIS)
def test_linear_rejects_bad_arguments(api):
    x, w = np.ones((4, 3), np.float32), np.ones((5, 3), np.float32)
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        api.linear([[1.0]], w)
    with pytest.raises(TypeError, match="w must have dtype float32 or float64"):
        api.linear(x, np.ones((5, 3), np.int32))
    with pytest.raises(ValueError, match=r"x must be a 2-d array, got shape \(4, 3, 1\)"):
        api.linear(x[..., None], w)
    with pytest.raises(ValueError, match=r"w must have shape \(out_features, 3\)"):
        api.linear(x, np.ones((5, 4), np.float32))
    with pytest.raises(ValueError, match=r"b must have shape \(5,\), got \(4,\)"):
        api.linear(x, w, np.ones(4, np.float32))
    with pytest.raises(TypeError, match="w has dtype float64 but x has dtype float32"):
        api.linear(x, w.astype(np.float64))
    with pytest.raises(ValueError, match=r"dy must have shape \(4, 5\), got \(4, 6\)"):
        api.linear_backward(np.ones((4, 6), np.float32), x, w)
    with pytest.raises(TypeError, match="dy has dtype float64"):
        api.linear_backward(np.ones((4, 5)), x, w)


def test_linear_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x, w, b, dy = (randn(rng, s, np.float64) for s in ((6, 10), (4, 10), (4,), (6, 4)))
    tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
    ty = torch.nn.functional.linear(tx, tw, tb)
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(fastconv.linear(x, w, b), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    for g, t in zip(fastconv.linear_backward(dy, x, w), (tx, tw, tb)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_linear_layer_runs_on_both_backends():
    from fastconv import nn

    layer = nn.Linear(6, 3, seed=1, dtype=np.float64)
    x = np.random.default_rng(12).standard_normal((5, 6))
    dy = np.random.default_rng(13).standard_normal((5, 3))
    layer.input_grad = True
    y = layer.forward(x)
    dx = layer.backward(dy)
    grads = (layer.weight.grad.copy(), layer.bias.grad.copy())
    layer.zero_grad()
    with fastconv.use_backend("reference"):
        np.testing.assert_allclose(layer.forward(x), y, rtol=1e-12)
        np.testing.assert_allclose(layer.backward(dy), dx, rtol=1e-12)
    for g, e in zip((layer.weight.grad, layer.bias.grad), grads):
        np.testing.assert_allclose(g, e, rtol=1e-12)
