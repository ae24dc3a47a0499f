"""lp_pool2d and its backward (C kernels): PyTorch (when installed), the NumPy reference,
central differences, float32 / float64, p = inf, zero windows, errors, the layer."""

import numpy as np
import pytest

import fastconv
from fastconv import nn
from fastconv import reference as ref
from conftest import DTYPES, assert_close
from _fd import check_grads, check_layer

PS = [1.0, 2.0, 3.0, 0.5, 1.5, 4]
GEOMS = [((2, 3, 7, 6), 2, None, False), ((1, 2, 7, 8), (3, 2), (2, 3), True),
         ((2, 1, 5, 5), 3, 1, False), ((1, 2, 9, 4), (2, 4), (3, 1), True),
         ((1, 1, 1, 1), 1, None, False), ((1, 2, 6, 7), (3, 3), 2, True)]


def _x(shape, p, seed, dtype=np.float64, positive=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if positive or (positive is None and p not in (1.0, 2.0, 3.0)):
        x = np.abs(x) + 0.1          # a non-integer power of a negative number is NaN
    return x.astype(dtype), rng


@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("geom", GEOMS)
def test_matches_torch(p, geom):
    torch = pytest.importorskip("torch")
    shape, k, s, ceil = geom
    x, rng = _x(shape, p, 0)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.lp_pool2d(xt, p, k, s, ceil)
    dy = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(dy))
    for mod in (fastconv, ref):
        np.testing.assert_allclose(mod.lp_pool2d(x, p, k, s, ceil), yt.detach().numpy(),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(mod.lp_pool2d_backward(dy, x, p, k, s, ceil),
                                   xt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_negative_inputs_as_torch():
    """Odd p keeps signs (a negative power sum gives NaN, p = 1 a negative sum); even p
    is a norm."""
    x = np.array([[[[-1.0, -2.0], [0.5, -0.25]]]])
    assert fastconv.lp_pool2d(x, 1, 2)[0, 0, 0, 0] == pytest.approx(-2.75)
    assert np.isnan(fastconv.lp_pool2d(x, 3, 2)[0, 0, 0, 0])
    assert fastconv.lp_pool2d(x, 2, 2)[0, 0, 0, 0] == pytest.approx(np.sqrt(5.3125))
    torch = pytest.importorskip("torch")
    for p in (1, 2, 3, 1.5):
        want = torch.nn.functional.lp_pool2d(torch.tensor(x), p, 2).numpy()
        np.testing.assert_allclose(fastconv.lp_pool2d(x, p, 2), want, rtol=1e-12)


@pytest.mark.parametrize("p", PS)
def test_gradients_against_finite_differences(p):
    for shape, k, s, ceil in GEOMS[:4]:
        x, rng = _x(shape, p, 1, positive=True if p == 3 else None)  # no negative sums
        dy = rng.standard_normal(ref.lp_pool2d(x, p, k, s, ceil).shape)
        for mod in (fastconv, ref):
            check_grads(lambda: float(np.sum(mod.lp_pool2d(x, p, k, s, ceil) * dy)),
                        [mod.lp_pool2d_backward(dy, x, p, k, s, ceil)], [x], rng, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_native_matches_reference(dtype):
    for p in PS + [np.inf]:
        for j, (shape, k, s, ceil) in enumerate(GEOMS):
            x, rng = _x(shape, p, 10 + j, dtype)
            y = fastconv.lp_pool2d(x, p, k, s, ceil)
            assert y.dtype == dtype
            assert_close(y, ref.lp_pool2d(x, p, k, s, ceil), dtype, scale=4)
            dy = rng.standard_normal(y.shape).astype(dtype)
            assert_close(fastconv.lp_pool2d_backward(dy, x, p, k, s, ceil),
                         ref.lp_pool2d_backward(dy, x, p, k, s, ceil), dtype, scale=16)


def test_inf_is_max_pooling():
    x, rng = _x((2, 3, 8, 7), 2, 3, positive=False)
    y = fastconv.lp_pool2d(x, float("inf"), 3, 2, True)
    y_m, idx = fastconv.max_pool2d(x, 3, 2, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(y, y_m)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(fastconv.lp_pool2d_backward(dy, x, np.inf, 3, 2, True),
                                  fastconv.max_pool2d_backward(dy, idx, x.shape))


@pytest.mark.parametrize("p", [1, 2, 3, 1.5])
def test_zero_window_gives_zero_gradient(p):
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 2:, 2:] = 1.0
    for mod in (fastconv, ref):
        y = mod.lp_pool2d(x, p, 2)
        assert y[0, 0, 0, 0] == 0 and y[0, 0, 1, 1] == pytest.approx(4 ** (1 / p))
        dx = mod.lp_pool2d_backward(np.ones_like(y), x, p, 2)
        assert np.all(np.isfinite(dx)) and not dx[0, 0, :2, :2].any()


def test_layouts_and_inputs_untouched():
    x, rng = _x((2, 3, 6, 5), 2, 4, np.float32)
    xs = np.asfortranarray(x.astype(">f4"))[:, :, ::-1]
    xs.flags.writeable = False
    before = np.array(xs)
    y = fastconv.lp_pool2d(input=xs, norm_type=2, kernel_size=2)
    assert_close(y, ref.lp_pool2d(np.array(xs, np.float32), 2, 2), np.float32)
    dx = fastconv.lp_pool2d_backward(np.ones_like(y), xs, 2, 2)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(xs, before)


@pytest.mark.parametrize("mod", [fastconv, ref])
def test_bad_input_raises(mod):
    x = np.ones((1, 2, 4, 4))
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="norm_type"):
            mod.lp_pool2d(x, bad, 2)
    with pytest.raises(TypeError, match="norm_type"):
        mod.lp_pool2d(x, "2", 2)
    with pytest.raises(ValueError, match="larger than"):
        mod.lp_pool2d(x, 2, 5)
    with pytest.raises(TypeError, match="never mixes"):
        mod.lp_pool2d_backward(np.ones((1, 2, 2, 2), np.float32), x, 2, 2)
    with pytest.raises(ValueError, match="dy must have shape"):
        mod.lp_pool2d_backward(np.ones((1, 2, 3, 3)), x, 2, 2)
    assert np.all(x == 1)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_layer(backend):
    rng = np.random.default_rng(5)
    x = np.abs(rng.standard_normal((2, 3, 7, 6))) + 0.1
    with fastconv.use_backend(backend):
        for p in (2, 1.5):
            layer = nn.LPPool2d(p, 3, stride=2, ceil_mode=True, dtype=np.float64)
            assert layer.forward(x).shape == (2, 3, 3, 3)
            check_layer(layer, x, rng, rtol=1e-5)
    assert repr(nn.LPPool2D(2, 2)) == "LPPool2D(norm_type=2, kernel_size=(2, 2), stride=(2, 2))"
    with pytest.raises(ValueError, match="norm_type"):
        nn.LPPool2D(0, 2)
