"""fastconv.linear / linear_backward (fastconv's own GEMM) against the reference and torch."""

import numpy as np
import pytest

import fastconv
from fastconv import _kernels as K
from fastconv import reference as ref
from conftest import DTYPES, assert_close, gemm_isas, randn

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


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("nt", [1, 2])
def test_linear_matches_reference_exactly_on_integers(dtype, shape, nt, isa, threads):
    fastconv.set_num_threads(nt)
    n, fin, fout = shape
    rng = np.random.default_rng(sum(shape))
    x, w, b, dy = (_ints(rng, s, dtype) for s in ((n, fin), (fout, fin), (fout,), (n, fout)))
    for bias in (b, None):
        y = fastconv.linear(x, w, bias)
        assert y.shape == (n, fout) and y.dtype == dtype
        np.testing.assert_array_equal(y, ref.linear(x, w, bias))
    for need_dx in (True, False):
        for need_db in (True, False):
            got = fastconv.linear_backward(dy, x, w, need_dx=need_dx, need_db=need_db)
            want = ref.linear_backward(dy, x, w, need_dx=need_dx, need_db=need_db)
            for g, e in zip(got, want):
                if e is None:
                    assert g is None
                else:
                    assert g.shape == e.shape and g.dtype == e.dtype
                    np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_matches_reference_on_random_data(dtype, isa):
    rng = np.random.default_rng(7)
    x, w, b, dy = (randn(rng, s, dtype) for s in ((37, 129), (71, 129), (71,), (37, 71)))
    assert_close(fastconv.linear(x, w, b), ref.linear(x, w, b), dtype, scale=10)
    for g, e in zip(fastconv.linear_backward(dy, x, w), ref.linear_backward(dy, x, w)):
        assert_close(g, e, dtype, scale=10)


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
