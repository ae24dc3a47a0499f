"""adaptive_avg_pool2d / adaptive_max_pool2d and their gradients: PyTorch (when
installed), the loop reference, central differences, float32 / float64, errors, layers."""

import numpy as np
import pytest

import fastconv
from fastconv import nn
from fastconv import reference as ref
from conftest import DTYPES, assert_close
from _fd import check_grads, check_layer

SIZES = [((2, 3, 7, 5), (3, 2)), ((1, 2, 5, 9), 4), ((2, 1, 4, 4), (4, 4)), ((1, 2, 3, 2), (7, 5)),
         ((1, 1, 1, 1), 3), ((2, 2, 10, 6), (None, 4)), ((1, 3, 6, 11), (5, None)),
         ((3, 2, 13, 1), (6, 1)), ((1, 2, 8, 8), 1), ((1, 1, 2, 3), (5, 7))]


def _x(shape, seed, ties=False, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)
    return x.astype(dtype), rng


@pytest.mark.parametrize("shape,size", SIZES)
@pytest.mark.parametrize("ties", [False, True])
def test_matches_torch(shape, size, ties):
    torch = pytest.importorskip("torch")
    x, rng = _x(shape, 0, ties)
    for name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        xt = torch.tensor(x, requires_grad=True)
        out = getattr(torch.nn.functional, name)(xt, size)
        dy = rng.standard_normal(tuple(out.shape))
        out.backward(torch.tensor(dy))
        for mod in (fastconv, ref):
            if name == "adaptive_avg_pool2d":
                y = mod.adaptive_avg_pool2d(x, size)
                dx = mod.adaptive_avg_pool2d_backward(dy, x.shape)
            else:
                y, idx = mod.adaptive_max_pool2d(x, size, return_indices=True)
                _, idx_t = torch.nn.functional.adaptive_max_pool2d(torch.tensor(x), size,
                                                                   return_indices=True)
                np.testing.assert_array_equal(idx, idx_t.numpy())
                dx = mod.adaptive_max_pool2d_backward(dy, idx, x.shape)
            np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("shape,size", SIZES[:6])
def test_gradients_against_finite_differences(shape, size):
    x, rng = _x(shape, 1)
    for mod in (fastconv, ref):
        dy = rng.standard_normal(mod.adaptive_avg_pool2d(x, size).shape)
        check_grads(lambda: float(np.sum(mod.adaptive_avg_pool2d(x, size) * dy)),
                    [mod.adaptive_avg_pool2d_backward(dy, x.shape)], [x], rng)
        _, idx = mod.adaptive_max_pool2d(x, size, return_indices=True)
        check_grads(lambda: float(np.sum(mod.adaptive_max_pool2d(x, size) * dy)),
                    [mod.adaptive_max_pool2d_backward(dy, idx, x.shape)], [x], rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ties", [False, True])
def test_native_matches_reference(dtype, ties):
    for k, (shape, size) in enumerate(SIZES):
        x, rng = _x(shape, 10 + k, ties, dtype)
        y = fastconv.adaptive_avg_pool2d(x, size)
        assert y.dtype == dtype
        assert_close(y, ref.adaptive_avg_pool2d(x, size), dtype)
        dy = rng.standard_normal(y.shape).astype(dtype)
        assert_close(fastconv.adaptive_avg_pool2d_backward(dy, x.shape),
                     ref.adaptive_avg_pool2d_backward(dy, x.shape), dtype)
        y, idx = fastconv.adaptive_max_pool2d(x, size, return_indices=True)
        y_r, idx_r = ref.adaptive_max_pool2d(x, size, return_indices=True)
        np.testing.assert_array_equal(y, y_r)
        np.testing.assert_array_equal(idx, idx_r)
        assert_close(fastconv.adaptive_max_pool2d_backward(dy, idx, x.shape),
                     ref.adaptive_max_pool2d_backward(dy, idx, x.shape), dtype)


def test_nan_propagates_to_the_first_nan():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 1, 3] = np.nan
    x[0, 0, 2, 0] = np.nan
    for mod in (fastconv, ref):
        y, idx = mod.adaptive_max_pool2d(x, 1, return_indices=True)
        assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 7
        y, idx = mod.adaptive_max_pool2d(x, (2, 2), return_indices=True)
        assert np.isnan(y[0, 0, 0, 1]) and np.isnan(y[0, 0, 1, 0]) and y[0, 0, 1, 1] == 15
        assert idx[0, 0, 1, 0] == 8


def test_layouts_and_inputs_untouched():
    rng = np.random.default_rng(3)
    x = np.asfortranarray(rng.standard_normal((2, 3, 9, 7)).astype(">f4"))[:, :, ::-1]
    x.flags.writeable = False
    before = np.array(x)
    y = fastconv.adaptive_avg_pool2d(input=x, output_size=(4, 3))
    assert y.dtype == np.float32
    assert_close(y, ref.adaptive_avg_pool2d(np.array(x, np.float32), (4, 3)), np.float32)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("mod", [fastconv, ref])
def test_bad_input_raises(mod):
    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="output_size"):
        mod.adaptive_avg_pool2d(x, 0)
    with pytest.raises(ValueError, match="pair"):
        mod.adaptive_max_pool2d(x, (1, 2, 3))
    with pytest.raises(TypeError, match="int"):
        mod.adaptive_avg_pool2d(x, 1.5)
    with pytest.raises(ValueError, match="4-d"):
        mod.adaptive_avg_pool2d(np.zeros((2, 4, 4)), 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        mod.adaptive_max_pool2d(x.astype(np.int64), 2)
    dy = np.ones((1, 2, 2, 2))
    with pytest.raises(ValueError, match="outside"):
        mod.adaptive_max_pool2d_backward(dy, np.full((1, 2, 2, 2), 16), x.shape)
    with pytest.raises(ValueError, match="dy must have shape"):
        mod.adaptive_avg_pool2d_backward(np.ones((1, 3, 2, 2)), x.shape)
    assert not x.any()


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_layers(backend):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 6))
    with fastconv.use_backend(backend):
        for layer in (nn.AdaptiveAvgPool2d((3, None), dtype=np.float64),
                      nn.AdaptiveMaxPool2d(4, dtype=np.float64)):
            y = layer.forward(x)
            assert y.shape[2:] in ((3, 6), (4, 4))
            check_layer(layer, x, rng)
    assert repr(nn.AdaptiveAvgPool2D((2, None))) == "AdaptiveAvgPool2D(output_size=(2, None))"
    assert nn.AdaptiveMaxPool2d is nn.AdaptiveMaxPool2D
    with pytest.raises(ValueError):
        nn.AdaptiveAvgPool2D(0)
