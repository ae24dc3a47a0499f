"""deform_conv2d and its backward (C kernels) against the NumPy reference written from
torchvision's definition (torchvision is not installed here), central differences for
every gradient (input, offset, mask, weight, bias), conv2d for zero and integer offsets,
float32 / float64, errors, determinism and the layer."""

import numpy as np
import pytest

import fastconv
from fastconv import nn
from fastconv import reference as ref
from conftest import DTYPES, assert_close
from _fd import check_grads

CASES = [  # x shape, (K, kh, kw), kwargs, offset groups, weight groups
    ((2, 4, 6, 5), (6, 3, 2), dict(stride=(2, 1), padding=1, dilation=(1, 2)), 2, 2),
    ((1, 3, 5, 5), (2, 3, 3), dict(padding=1), 1, 1),
    ((2, 2, 4, 7), (4, 1, 3), dict(stride=2), 2, 1),
    ((1, 6, 7, 6), (3, 2, 2), dict(padding=(0, 1), dilation=2), 3, 3),
]


def _data(case, dtype=np.float64, seed=0, scale=1.5):
    shape, (K, kh, kw), kwargs, og, g = case
    rng = np.random.default_rng(seed)
    N, C, H, W = shape
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((K, C // g, kh, kw)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    P, Q = fastconv.conv2d(x, w, groups=g, **kwargs).shape[2:]
    off = (rng.standard_normal((N, 2 * og * kh * kw, P, Q)) * scale).astype(dtype)
    mask = rng.uniform(0, 1, (N, og * kh * kw, P, Q)).astype(dtype)
    return x, off, w, b, mask, kwargs, g, rng


@pytest.mark.parametrize("case", CASES)
def test_zero_offsets_are_conv2d(case):
    x, off, w, b, mask, kw, g, _ = _data(case)
    off[...] = 0
    y_conv = fastconv.conv2d(x, w, b, groups=g, **kw)
    for mod in (fastconv, ref):
        np.testing.assert_allclose(mod.deform_conv2d(x, off, w, b, **kw), y_conv, rtol=1e-10,
                                   atol=1e-12)
        mask[...] = 0.5
        np.testing.assert_allclose(mod.deform_conv2d(x, off, w, None, **kw, mask=mask),
                                   0.5 * fastconv.conv2d(x, w, groups=g, **kw), rtol=1e-10,
                                   atol=1e-12)


def test_integer_offsets_are_a_shifted_conv2d():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 8, 9))
    w = rng.standard_normal((4, 3, 3, 3))
    off = np.zeros((2, 18, 6, 7))
    off[:, 0::2] = 1.0     # every tap one row down
    off[:, 1::2] = -2.0    # and two columns left
    shifted = np.zeros_like(x)
    shifted[:, :, :-1, 2:] = x[:, :, 1:, :-2]
    want = fastconv.conv2d(shifted, w)
    for mod in (fastconv, ref):
        np.testing.assert_allclose(mod.deform_conv2d(x, off, w), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_gradients_against_finite_differences(case, masked):
    x, off, w, b, mask, kw, g, rng = _data(case, seed=2)
    m = mask if masked else None
    dy = rng.standard_normal(ref.deform_conv2d(x, off, w, b, **kw, mask=m).shape)
    for mod in (fastconv, ref):
        dx, doff, dmask, dw, db = mod.deform_conv2d_backward(dy, x, off, w, **kw, mask=m)
        arrays, grads = [x, off, w, b], [dx, doff, dw, db]
        if masked:
            arrays.append(mask)
            grads.append(dmask)
        else:
            assert dmask is None
        check_grads(lambda: float(np.sum(mod.deform_conv2d(x, off, w, b, **kw, mask=m) * dy)),
                    grads, arrays, rng, rtol=1e-5, atol=1e-7, limit=20)


@pytest.mark.parametrize("dtype", DTYPES)
def test_native_matches_reference(dtype):
    for j, case in enumerate(CASES):
        x, off, w, b, mask, kw, g, rng = _data(case, dtype, seed=3 + j)
        for m in (None, mask):
            y = fastconv.deform_conv2d(x, off, w, b, **kw, mask=m)
            assert y.dtype == dtype
            assert_close(y, ref.deform_conv2d(x, off, w, b, **kw, mask=m), dtype, scale=8)
            dy = rng.standard_normal(y.shape).astype(dtype)
            for got, want in zip(fastconv.deform_conv2d_backward(dy, x, off, w, **kw, mask=m),
                                 ref.deform_conv2d_backward(dy, x, off, w, **kw, mask=m)):
                if want is None:
                    assert got is None
                    continue
                assert got.dtype == dtype
                assert_close(got, want, dtype, scale=32)


def test_offsets_far_outside_give_zero(threads):
    x, off, w, b, mask, kw, g, rng = _data(CASES[1])
    off[...] = 100.0
    y = fastconv.deform_conv2d(x, off, w, b, **kw)
    np.testing.assert_allclose(y, np.broadcast_to(b[None, :, None, None], y.shape))
    dx, doff, _, dw, _ = fastconv.deform_conv2d_backward(np.ones_like(y), x, off, w, **kw)
    assert not dx.any() and not doff.any() and not dw.any()


def test_deterministic_over_threads(threads):
    x, off, w, b, mask, kw, g, rng = _data(CASES[0], np.float32, seed=5)
    dy = rng.standard_normal(fastconv.deform_conv2d(x, off, w, **kw).shape).astype(np.float32)
    outs = []
    for n in (1, 2, 3):
        fastconv.set_num_threads(n)
        outs.append(fastconv.deform_conv2d_backward(dy, x, off, w, **kw, mask=mask))
    for other in outs[1:]:
        for a, c in zip(outs[0], other):
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("mod", [fastconv, ref])
def test_bad_input_raises(mod):
    x = np.zeros((1, 4, 5, 5))
    w = np.zeros((2, 4, 3, 3))
    off = np.zeros((1, 18, 3, 3))
    with pytest.raises(ValueError, match="multiple of 2\\*kh\\*kw"):
        mod.deform_conv2d(x, np.zeros((1, 10, 3, 3)), w)
    with pytest.raises(ValueError, match="offset groups"):
        mod.deform_conv2d(x, np.zeros((1, 54, 3, 3)), w)
    with pytest.raises(ValueError, match="offset must have shape"):
        mod.deform_conv2d(x, np.zeros((1, 18, 4, 3)), w)
    with pytest.raises(ValueError, match="mask must have shape"):
        mod.deform_conv2d(x, off, w, mask=np.zeros((1, 18, 3, 3)))
    with pytest.raises(ValueError, match="divide"):
        mod.deform_conv2d(x, off, np.zeros((2, 3, 3, 3)))
    with pytest.raises(TypeError, match="never mixes"):
        mod.deform_conv2d(x, off.astype(np.float32), w)
    assert not x.any() and not off.any()


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_layer(backend):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 5, 5))
    off = rng.standard_normal((2, 2 * 9, 5, 5))
    mask = rng.uniform(size=(2, 9, 5, 5))
    with fastconv.use_backend(backend):
        layer = nn.DeformConv2d(4, 6, 3, padding=1, groups=2, dtype=np.float64, seed=0)
        layer.bias.data[...] = rng.standard_normal(6)
        r = rng.standard_normal((2, 6, 5, 5))
        layer.zero_grad()
        layer.forward(x, off, mask)
        dx = layer.backward(r)
        grads = [dx, layer.offset_grad, layer.mask_grad, layer.weight.grad.copy(),
                 layer.bias.grad.copy()]
        check_grads(lambda: float(np.sum(layer.forward(x, off, mask) * r)), grads,
                    [x, off, mask, layer.weight.data, layer.bias.data], rng, rtol=1e-5,
                    atol=1e-7, limit=15)
    assert nn.DeformConv2d is nn.DeformConv2D
    assert "groups=2" in repr(layer)
