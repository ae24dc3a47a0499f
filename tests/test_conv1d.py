"""conv1d and its backward: PyTorch (when installed), the NumPy reference, central
differences, every algorithm in float32 / float64, errors, the layer."""

import warnings

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
        C, K, R = G * int(rng.integers(1, 4)), G * int(rng.integers(1, 4)), int(rng.integers(1, 6))
        s, d, L = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(1, 24))
        pad = ["same", "valid", int(rng.integers(0, 4))][len(out) % 3]
        s = 1 if pad == "same" else s
        if pad != "same" and L + 2 * (pad if isinstance(pad, int) else 0) < d * (R - 1) + 1:
            continue
        out.append(((int(rng.integers(1, 3)), C, L), (K, C // G, R),
                    dict(stride=s, padding=pad, dilation=d, groups=G)))
    return out


CASES = _cases(30) + [((2, 8, 300), (16, 8, 9), dict(padding=4)),
                      ((1, 64, 257), (32, 16, 5), dict(stride=2, groups=4, dilation=3))]


def _data(case, dtype=np.float64, seed=1):
    xs, ws, kw = case
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype),
            rng.standard_normal(ws[0]).astype(dtype), kw, rng)


@pytest.mark.parametrize("case", CASES)
def test_matches_torch(case):
    torch = pytest.importorskip("torch")
    x, w, b, kw, rng = _data(case)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # torch: "same" with an even kernel pads a copy
        yt = torch.nn.functional.conv1d(xt, wt, bt, **kw)
    dy = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(dy))
    for mod in (fastconv, ref):
        np.testing.assert_allclose(mod.conv1d(x, w, b, **kw), yt.detach().numpy(),
                                   rtol=1e-9, atol=1e-11)
        for got, want in zip(mod.conv1d_backward(dy, x, w, **kw), (xt, wt, bt)):
            np.testing.assert_allclose(got, want.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("case", CASES[:10])
def test_reference_against_finite_differences(case):
    x, w, b, kw, rng = _data(case)
    dy = rng.standard_normal(ref.conv1d(x, w, b, **kw).shape)
    grads = ref.conv1d_backward(dy, x, w, **kw)
    check_grads(lambda: float(np.sum(ref.conv1d(x, w, b, **kw) * dy)), grads, [x, w, b], rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", ["auto", "direct", "gemm", "im2col"])
def test_native_matches_reference(dtype, algo):
    for case in CASES:
        x, w, b, kw, rng = _data(case, dtype)
        y = fastconv.conv1d(x, w, b, **kw, algo=algo)
        assert y.dtype == dtype
        assert_close(y, ref.conv1d(x, w, b, **kw), dtype, scale=8)
        dy = rng.standard_normal(y.shape).astype(dtype)
        for got, want in zip(fastconv.conv1d_backward(dy, x, w, **kw, algo=algo),
                             ref.conv1d_backward(dy, x, w, **kw)):
            assert got.dtype == dtype
            assert_close(got, want, dtype, scale=32)


def test_long_sequence_and_layouts():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 5000)).astype(np.float32)
    w = rng.standard_normal((8, 6, 9)).astype(np.float32)
    xs = np.asfortranarray(x.astype(">f4"))[:, :, ::-1]
    xs.flags.writeable = False
    before = np.array(xs)
    y = fastconv.conv1d(input=xs, weight=w, padding="same", dilation=2)
    assert y.shape == (2, 8, 5000)
    assert_close(y, ref.conv1d(np.array(xs, np.float32), w, padding="same", dilation=2),
                 np.float32, scale=8)
    np.testing.assert_array_equal(xs, before)
    dx, dw, db = fastconv.conv1d_backward(np.ones_like(y), xs, w, padding="same", dilation=2,
                                          need_dx=False, need_db=False)
    assert dx is None and db is None and dw.shape == w.shape


@pytest.mark.parametrize("mod", [fastconv, ref])
def test_bad_input_raises(mod):
    x = np.zeros((2, 4, 10), np.float32)
    w = np.zeros((6, 2, 3), np.float32)
    with pytest.raises(ValueError, match="3-d"):
        mod.conv1d(x[None], w)
    with pytest.raises(ValueError, match="stride 1"):
        mod.conv1d(x, w, groups=2, padding="same", stride=2)
    with pytest.raises(ValueError, match="larger than the padded"):
        mod.conv1d(x, np.zeros((6, 4, 11), np.float32))
    with pytest.raises(ValueError, match="w.shape\\[1\\]"):
        mod.conv1d(x, w)
    with pytest.raises(TypeError, match="never mixes"):
        mod.conv1d(x, w.astype(np.float64), groups=2)
    with pytest.raises(ValueError, match="1-tuple"):
        mod.conv1d(x, w, groups=2, stride=(1, 1))
    with pytest.raises(ValueError, match="winograd|algo"):
        mod.conv1d(x, w, groups=2, algo="winograd" if mod is fastconv else "nope")
    assert not x.any()


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_layer(backend):
    rng = np.random.default_rng(3)
    with fastconv.use_backend(backend):
        layer = nn.Conv1d(4, 6, 3, padding="same", dilation=2, groups=2, dtype=np.float64, seed=0)
        layer.bias.data[...] = rng.standard_normal(6)
        x = rng.standard_normal((2, 4, 11))
        assert layer.forward(x).shape == (2, 6, 11)
        check_layer(layer, x, rng)
        strided = nn.Conv1D(3, 2, 4, stride=2, padding=1, dtype=np.float64, seed=1)
        check_layer(strided, rng.standard_normal((1, 3, 9)), rng)
    assert nn.Conv1d is nn.Conv1D
    assert repr(nn.Conv1D(2, 3, 5, padding="same")) == \
        "Conv1D(2, 3, kernel_size=5, stride=1, padding='same')"
    with pytest.raises(ValueError, match="stride 1"):
        nn.Conv1D(2, 3, 5, stride=2, padding="same")
