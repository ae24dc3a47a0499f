"""conv_transpose2d and its backward: PyTorch (when installed), the NumPy reference,
central differences, the native kernels in float32 and float64, errors, the layer."""

import numpy as np
import pytest

import fastconv
from fastconv import nn
from fastconv import reference as ref
from conftest import DTYPES, assert_close
from _fd import check_grads, check_layer


def _cases(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        G = int(rng.integers(1, 3))
        Cin, Kg = G * int(rng.integers(1, 3)), int(rng.integers(1, 4))
        kh, kw = (int(v) for v in rng.integers(1, 4, 2))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        dh, dw = (int(v) for v in rng.integers(1, 3, 2))
        ph, pw = (int(v) for v in rng.integers(0, 3, 2))
        oh, ow = int(rng.integers(0, max(sh, dh))), int(rng.integers(0, max(sw, dw)))
        H, W = (int(v) for v in rng.integers(1, 7, 2))
        if (H - 1) * sh - 2 * ph + dh * (kh - 1) + oh < 0 or \
                (W - 1) * sw - 2 * pw + dw * (kw - 1) + ow < 0:
            continue
        kw_ = dict(stride=(sh, sw), padding=(ph, pw), output_padding=(oh, ow), groups=G,
                   dilation=(dh, dw))
        out.append(((int(rng.integers(1, 3)), Cin, H, W), (Cin, Kg, kh, kw), kw_))
    return out


CASES = _cases(40)
# dilation > stride with output padding past padding + stride - 1 (the cropped rows),
# and a geometry where no input reaches the output (the bias alone)
CASES += [((2, 2, 3, 4), (2, 3, 2, 3), dict(stride=1, padding=0, output_padding=(2, 1),
                                            dilation=(3, 2))),
          ((1, 1, 1, 1), (1, 2, 1, 1), dict(stride=1, padding=1, output_padding=2, dilation=3)),
          ((2, 4, 5, 5), (4, 2, 3, 3), dict(stride=1, padding=1, groups=2))]


def _data(case, dtype=np.float64, seed=1):
    xs, ws, kw = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[1] * kw.get("groups", 1)).astype(dtype)
    return x, w, b, kw, rng


@pytest.mark.parametrize("case", CASES)
def test_matches_torch(case):
    torch = pytest.importorskip("torch")
    x, w, b, kw, rng = _data(case)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, **kw)
    dy = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(dy))
    for mod in (fastconv, ref):
        y = mod.conv_transpose2d(x, w, b, **kw)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-9, atol=1e-12)
        dx, dw, db = mod.conv_transpose2d_backward(dy, x, w, **kw)
        for got, want in ((dx, xt), (dw, wt), (db, bt)):
            np.testing.assert_allclose(got, want.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", CASES[:12] + CASES[-3:])
def test_reference_against_finite_differences(case):
    x, w, b, kw, rng = _data(case)
    dy = rng.standard_normal(ref.conv_transpose2d(x, w, b, **kw).shape)
    dx, dw, db = ref.conv_transpose2d_backward(dy, x, w, **kw)

    def loss():
        return float(np.sum(ref.conv_transpose2d(x, w, b, **kw) * dy))

    check_grads(loss, [dx, dw, db], [x, w, b], rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", ["auto", "direct", "gemm", "im2col"])
def test_native_matches_reference(dtype, algo):
    for case in CASES:
        x, w, b, kw, rng = _data(case, dtype)
        y = fastconv.conv_transpose2d(x, w, b, **kw, algo=algo)
        y_r = ref.conv_transpose2d(x, w, b, **kw)
        assert y.dtype == dtype and y.shape == y_r.shape
        assert_close(y, y_r, dtype, scale=4)
        dy = rng.standard_normal(y.shape).astype(dtype)
        for got, want in zip(fastconv.conv_transpose2d_backward(dy, x, w, **kw, algo=algo),
                             ref.conv_transpose2d_backward(dy, x, w, **kw)):
            assert got.dtype == dtype
            assert_close(got, want, dtype, scale=8)


def test_winograd_and_big_channels():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 9, 8))
    w = rng.standard_normal((16, 16, 3, 3))
    y_r = ref.conv_transpose2d(x, w, padding=1)
    np.testing.assert_allclose(fastconv.conv_transpose2d(x, w, padding=1, algo="winograd"), y_r,
                               rtol=1e-9, atol=1e-9)
    dy = rng.standard_normal(y_r.shape)
    for got, want in zip(fastconv.conv_transpose2d_backward(dy, x, w, padding=1, algo="winograd"),
                         ref.conv_transpose2d_backward(dy, x, w, padding=1)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="winograd"):
        fastconv.conv_transpose2d(x, w, stride=2, algo="winograd")


def test_is_the_adjoint_of_conv2d():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 2))       # conv2d: 4 -> 6 with groups 2
    kw = dict(stride=2, padding=1, dilation=(1, 2), groups=2)
    y = fastconv.conv2d(x, w, **kw)
    u = rng.standard_normal(y.shape)
    op = (x.shape[2] - ((y.shape[2] - 1) * 2 - 2 + 2 + 1), x.shape[3] - ((y.shape[3] - 1) * 2 - 2 + 2 + 1))
    v = fastconv.conv_transpose2d(u, w, **kw, output_padding=op)
    assert v.shape == x.shape
    assert np.isclose(np.sum(y * u), np.sum(x * v), rtol=1e-10)


def test_layouts_keywords_and_inputs_untouched():
    rng = np.random.default_rng(5)
    x = np.asfortranarray(rng.standard_normal((2, 3, 5, 4)))[:, :, ::-1]
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.dtype(">f8"))
    b = rng.standard_normal(2)
    for a in (x, w, b):
        a.flags.writeable = False
    y = fastconv.conv_transpose2d(input=x, weight=w, bias=b, stride=2, output_padding=1)
    assert_close(y, ref.conv_transpose2d(np.array(x), np.array(w, np.float64), b, stride=2,
                                         output_padding=1), np.float64)
    dx, dw, db = fastconv.conv_transpose2d_backward(np.ones_like(y), x, w, stride=2,
                                                    output_padding=1, need_dx=False,
                                                    need_db=False)
    assert dx is None and db is None and dw.shape == w.shape


@pytest.mark.parametrize("mod", [fastconv, ref])
def test_bad_input_raises(mod):
    x = np.zeros((1, 4, 5, 5), np.float32)
    w = np.zeros((4, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="output_padding"):
        mod.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="w.shape\\[0\\]"):
        mod.conv_transpose2d(x, np.zeros((3, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="divisible by groups"):
        mod.conv_transpose2d(x, w, groups=3)
    with pytest.raises(TypeError, match="never mixes"):
        mod.conv_transpose2d(x, w.astype(np.float64))
    with pytest.raises(ValueError, match="empty"):
        mod.conv_transpose2d(x, w, padding=5)
    with pytest.raises(ValueError, match="int or a pair"):
        mod.conv_transpose2d(x, w, padding="same")
    with pytest.raises(ValueError, match="dy must have shape"):
        mod.conv_transpose2d_backward(np.zeros((1, 2, 6, 6), np.float32), x, w)
    assert not x.any() and not w.any()


def test_empty_batch():
    x = np.zeros((0, 2, 3, 3))
    w = np.ones((2, 3, 2, 2))
    y = fastconv.conv_transpose2d(x, w, np.ones(3))
    assert y.shape == (0, 3, 4, 4)
    dx, dw, db = fastconv.conv_transpose2d_backward(y, x, w)
    assert dx.shape == x.shape and not dw.any() and not db.any()


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_layer_gradients(backend):
    rng = np.random.default_rng(6)
    with fastconv.use_backend(backend):
        layer = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                                   dtype=np.float64, seed=0)
        layer.bias.data[...] = rng.standard_normal(6)
        x = rng.standard_normal((2, 4, 3, 4))
        assert layer.forward(x).shape == (2, 6, 6, 8)
        check_layer(layer, x, rng)
    assert nn.ConvTranspose2d is nn.ConvTranspose2D
    assert "output_padding=(1, 1)" in repr(layer)
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2D(2, 2, 3, stride=2, output_padding=2)
