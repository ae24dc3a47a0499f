"""The batch-normalisation kernels (csrc/batchnorm.c, fastconv.functional_batchnorm)
against the NumPy oracle (fastconv.reference_batchnorm) and a textbook formula, their
determinism over thread counts and SIMD instances, BatchNorm2D's gradients by finite
differences in float64, and PyTorch's BatchNorm2d when torch is importable."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import _kernels, nn
from fastconv import functional as F
from fastconv import reference as R
from _fd import check_layer
from conftest import gemm_isas

F32, F64 = np.float32, np.float64

SHAPES = [
    (1, 3, 4, 5),       # N = 1, H*W > 1
    (5, 1, 6, 7),       # C = 1
    (2, 3, 97, 101),    # large H*W, not a multiple of 16
    (3, 5, 7, 9),
    (4, 17, 15, 1),
    (2, 4, 16, 16),     # a multiple of the lane count
    (7, 2, 1, 1),       # one value per plane
    (64, 3, 3, 3),
]


def _data(shape, dtype, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = (rng.standard_normal(shape) * 2.0 + offset).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(0.5, 1.5, C).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    return x, dy, w, b


def _textbook(x, dy, w, b, eps):
    """float64 batch norm forward and backward straight from the definitions."""
    x, dy = x.astype(F64), dy.astype(F64)
    w = np.ones(x.shape[1]) if w is None else w.astype(F64)
    b = np.zeros(x.shape[1]) if b is None else b.astype(F64)
    ax = (0, 2, 3)
    n = x.size // x.shape[1]
    mean = x.mean(axis=ax)
    var = ((x - mean[:, None, None]) ** 2).mean(axis=ax)
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x - mean[:, None, None]) * invstd[:, None, None]
    y = xhat * w[:, None, None] + b[:, None, None]
    sdy = dy.sum(axis=ax)
    sdx = (dy * xhat).sum(axis=ax)
    dx = (w * invstd)[:, None, None] * (dy - (sdy / n)[:, None, None]
                                        - xhat * (sdx / n)[:, None, None])
    return y, mean, var, invstd, dx, sdy, sdx


def _close(a, e, dtype, scale=1.0):
    t = 2e-5 if dtype == F32 else 1e-12
    mag = max(1.0, float(np.max(np.abs(e)))) if np.size(e) else 1.0
    np.testing.assert_allclose(a, e, rtol=t, atol=t * mag * scale)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_against_reference_and_textbook(shape, dtype, affine):
    x, dy, w, b = _data(shape, dtype)
    if not affine:
        w = b = None
    y, mean, var, invstd = F.batch_norm_train(x, w, b, 1e-5)
    ry, rmean, rvar, rinvstd = R.batch_norm_train(x, w, b, 1e-5)
    for got in (y, mean, var, invstd):
        assert got.dtype == dtype
    _close(mean, rmean, dtype)
    _close(var, rvar, dtype)
    _close(invstd, rinvstd, dtype)
    _close(y, ry, dtype)
    dx, sdy, sdx = F.batch_norm_backward(dy, x, mean, invstd, w)
    rdx, rsdy, rsdx = R.batch_norm_backward(dy, x, mean, invstd, w)
    n = x.size // x.shape[1]
    _close(sdy, rsdy, dtype, np.sqrt(n))
    _close(sdx, rsdx, dtype, np.sqrt(n))
    _close(dx, rdx, dtype, 10.0)
    # the oracle against the definitions (float64 sums of the float input)
    ty, tmean, tvar, tinvstd, tdx, tsdy, tsdx = _textbook(x, dy, w, b, 1e-5)
    _close(mean, tmean, dtype)
    _close(var, tvar, dtype)
    _close(y, ty, dtype, 10.0)
    _close(sdy, tsdy, dtype, np.sqrt(n))
    _close(dx, tdx, dtype, 10.0)
    # sums only: the same sums, no dx
    none, sdy2, sdx2 = F.batch_norm_backward(dy, x, mean, invstd, w, need_dx=False)
    assert none is None
    np.testing.assert_array_equal(sdy2, sdy)
    np.testing.assert_array_equal(sdx2, sdx)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_affine_map(dtype):
    x, dy, w, b = _data((3, 4, 5, 6), dtype)
    m = np.linspace(-1, 1, 4).astype(dtype)
    for args in [(m, w, b), (None, w, b), (m, w, None), (None, w, None)]:
        got = F.batch_norm_affine(x, *args)
        np.testing.assert_array_equal(got, R.batch_norm_affine(x, *args))
        assert got.dtype == dtype
    empty = np.zeros((0, 4, 5, 6), dtype)
    assert F.batch_norm_affine(empty, m, w, b).shape == empty.shape


@pytest.mark.parametrize("dtype", [F32, F64])
def test_large_mean_small_spread(dtype):
    """|mean| >> std: the variance comes out right (no catastrophic cancellation)."""
    rng = np.random.default_rng(3)
    x = (1000.0 + rng.standard_normal((8, 3, 9, 11)) * 0.01).astype(dtype)
    _, mean, var, _ = F.batch_norm_train(x, None, None, 1e-12)
    x64 = x.astype(F64)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2, 3)), rtol=1e-7 if dtype == F32 else 1e-14)
    np.testing.assert_allclose(var, x64.var(axis=(0, 2, 3)), rtol=1e-5 if dtype == F32 else 1e-9)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("shape", [(8, 6, 33, 33), (64, 3, 16, 16), (2, 1, 200, 190)])
def test_thread_count_and_isa_bitwise(threads, dtype, shape):
    x, dy, w, b = _data(shape, dtype, seed=4, offset=3.0)
    prev_isa = _kernels.isa()
    results = []
    try:
        for isa in gemm_isas():
            _kernels.set_isa(isa)
            for nt in (1, 2):
                fastconv.set_num_threads(nt)
                y, mean, var, invstd = F.batch_norm_train(x, w, b, 1e-5)
                dx, sdy, sdx = F.batch_norm_backward(dy, x, mean, invstd, w)
                e = F.batch_norm_affine(x, mean, invstd, b)
                results.append((isa, nt, [y, mean, var, invstd, dx, sdy, sdx, e]))
    finally:
        _kernels.set_isa(prev_isa)
    first = results[0][2]
    for isa, nt, got in results[1:]:
        for a, e in zip(got, first):
            np.testing.assert_array_equal(a, e, err_msg=f"isa={isa} threads={nt}")


def test_inputs_not_written_and_any_layout():
    x, dy, w, b = _data((4, 3, 10, 12), F64)
    xs = x[:, :, ::2, :]                 # strided
    xb = xs.astype(xs.dtype.newbyteorder(">"))  # non-native byte order
    keep = xs.copy()
    ref = F.batch_norm_train(np.ascontiguousarray(xs), w, b, 1e-5)
    for inp in (xs, xb):
        got = F.batch_norm_train(inp, w, b, 1e-5)
        for a, e in zip(got, ref):
            np.testing.assert_array_equal(a, e)
    np.testing.assert_array_equal(xs, keep)
    d = dy[:, :, ::2, :]
    rdx = F.batch_norm_backward(np.ascontiguousarray(d), np.ascontiguousarray(xs), ref[1], ref[3], w)
    gdx = F.batch_norm_backward(d, xs, ref[1], ref[3], w)
    for a, e in zip(gdx, rdx):
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("mod", [F, R], ids=["native", "reference"])
def test_bad_arguments(mod):
    x, dy, w, b = _data((2, 3, 4, 4), F32)
    with pytest.raises(ValueError, match="more than one value per channel"):
        mod.batch_norm_train(x[:1, :, :1, :1], None, None, 1e-5)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        mod.batch_norm_train(x, w[:2], b, 1e-5)
    with pytest.raises(TypeError, match="float32"):
        mod.batch_norm_train(x, w.astype(F64), b, 1e-5)
    with pytest.raises(ValueError, match="must have shape"):
        mod.batch_norm_backward(dy[:1], x, w, w, w)
    with pytest.raises(TypeError, match="ndarray"):
        mod.batch_norm_affine(x.tolist(), None, w, None)
    with pytest.raises(TypeError, match="scale"):
        mod.batch_norm_affine(x, None, None, None)


def test_binding_checks_buffer_lengths():
    x = np.zeros(2 * 3 * 4, F32)
    v = np.zeros(3, F32)
    with pytest.raises(ValueError, match="buffer y"):
        _kernels.bn_fwd_train(2, 3, 4, 1e-5, x, v, v, x[:-1], v.copy(), v.copy(), v.copy(), 1)
    with pytest.raises(ValueError, match="gamma"):
        _kernels.bn_fwd_train(2, 3, 4, 1e-5, x, v[:2], v, x.copy(), v.copy(), v.copy(), v.copy(), 1)


# ---------------------------------------------------------------- the layer


def _gradcheck(layer, x, seed=0):
    """Input and parameter gradients against central differences (tests/_fd.py)."""
    check_layer(layer, x, np.random.default_rng(seed), rtol=1e-5, atol=1e-7, limit=30)


@pytest.mark.parametrize("shape", [(1, 2, 3, 4), (5, 1, 3, 3), (3, 4, 5, 1), (2, 3, 17, 19)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_gradcheck_train(shape, affine):
    layer = nn.BatchNorm2D(shape[1], affine=affine, dtype=F64)
    if affine:
        rng = np.random.default_rng(1)
        layer.weight.data[...] = rng.uniform(0.5, 1.5, shape[1])
        layer.bias.data[...] = rng.standard_normal(shape[1])
    x = np.random.default_rng(2).standard_normal(shape) * 1.5 + 0.5
    _gradcheck(layer, x)


def test_layer_gradcheck_eval():
    layer = nn.BatchNorm2D(3, dtype=F64)
    layer.forward(np.random.default_rng(0).standard_normal((4, 3, 5, 5)) + 2)
    layer.weight.data[...] = [0.5, 1.0, 2.0]
    layer.eval()
    _gradcheck(layer, np.random.default_rng(1).standard_normal((1, 3, 1, 1)))   # one value: eval allows it
    _gradcheck(layer, np.random.default_rng(2).standard_normal((2, 3, 4, 7)))


def test_layer_input_grad_false_and_frozen():
    x, dy, w, b = _data((3, 2, 4, 4), F64)
    layer = nn.BatchNorm2D(2, dtype=F64)
    layer.input_grad = False
    layer.forward(x)
    assert layer.backward(dy) is None
    g = layer.weight.grad.copy()
    assert np.any(g != 0)
    layer.weight.requires_grad = False
    layer.bias.requires_grad = False
    layer.forward(x)
    assert layer.backward(dy) is None
    np.testing.assert_array_equal(layer.weight.grad, g)


def test_layer_native_matches_reference_backend():
    x, dy, w, b = _data((6, 3, 5, 7), F64, offset=4.0)
    out = {}
    for backend in ("native", "reference"):
        with fastconv.use_backend(backend):
            layer = nn.BatchNorm2D(3, momentum=None, dtype=F64)
            layer.weight.data[...] = w
            ys = [layer.forward(x * (k + 1)) for k in range(3)]
            dx = layer.backward(dy)
            layer.eval()
            ye = layer.forward(x)
            dxe = layer.backward(dy)
            out[backend] = ys + [dx, ye, dxe, layer.running_mean.copy(), layer.running_var.copy(),
                                 layer.weight.grad.copy(), layer.bias.grad.copy()]
    for a, e in zip(out["native"], out["reference"]):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_against_torch(dtype, momentum, affine):
    torch = pytest.importorskip("torch")
    C = 3
    layer = nn.BatchNorm2D(C, momentum=momentum, affine=affine, dtype=dtype)
    tbn = torch.nn.BatchNorm2d(C, momentum=momentum, affine=affine)
    tbn = tbn.double() if dtype == F64 else tbn.float()
    if affine:
        w = np.random.default_rng(5).uniform(0.5, 1.5, C).astype(dtype)
        layer.weight.data[...] = w
        with torch.no_grad():
            tbn.weight.copy_(torch.from_numpy(w))
    t = 1e-4 if dtype == F32 else 1e-10
    for step in range(3):
        x, dy, _, _ = _data((4, C, 6, 5), dtype, seed=step, offset=step)
        tx = torch.from_numpy(x).requires_grad_(True)
        ty = tbn(tx)
        ty.backward(torch.from_numpy(dy))
        y = layer.forward(x)
        dx = layer.backward(dy)
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=t, atol=t)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=t, atol=t)
        np.testing.assert_allclose(layer.running_mean, tbn.running_mean.numpy(), rtol=t, atol=t)
        np.testing.assert_allclose(layer.running_var, tbn.running_var.numpy(), rtol=t, atol=t)
        assert int(layer.num_batches_tracked) == int(tbn.num_batches_tracked)
    if affine:
        np.testing.assert_allclose(layer.weight.grad, tbn.weight.grad.numpy(), rtol=t, atol=t * 10)
        np.testing.assert_allclose(layer.bias.grad, tbn.bias.grad.numpy(), rtol=t, atol=t * 10)
    layer.eval()
    tbn.eval()
    x, dy, _, _ = _data((2, C, 4, 4), dtype, seed=9)
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = tbn(tx)
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(layer.forward(x), ty.detach().numpy(), rtol=t, atol=t)
    np.testing.assert_allclose(layer.backward(dy), tx.grad.numpy(), rtol=t, atol=t)


@pytest.mark.parametrize("mod", [F, R], ids=["native", "reference"])
def test_required_vectors_name_themselves(mod):
    x = np.ones((2, 3, 2, 2), F32)
    v = np.ones(3, F32)
    with pytest.raises(TypeError, match=r"^scale must be numpy.ndarray of shape \(C,\), got None"):
        mod.batch_norm_affine(x, v, None, v)
    with pytest.raises(TypeError, match=r"^mean and invstd must be numpy.ndarrays"):
        mod.batch_norm_backward(x, x, None, None, v)
    with pytest.raises(TypeError, match=r"^invstd must be numpy.ndarray "):
        mod.batch_norm_backward(x, x, v, None, v)
