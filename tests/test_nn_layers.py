"""The layer API: every layer that calls the kernels (convolution, pooling, ReLU, Linear
and the containers) on the native backend against the reference backend; the layers
written in plain NumPy, which run the same code on both backends (GlobalAvgPool2D,
LeakyReLU, Sigmoid, Tanh, Flatten, BatchNorm2D, Dropout) and the losses against
hand-worked values and float64 formulas written here; the Module machinery (parameters,
modes, state_dict, freeze, input_grad), Dropout and BatchNorm2D train/eval behaviour, the
losses, the backend switch and the error messages.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import _backend, nn

F32, F64 = np.float32, np.float64

def rand(shape, dtype=F64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- backend switch


def test_backend_default_and_switch():
    assert fastconv.get_backend() == "native"
    sw = fastconv.use_backend("reference")
    try:
        assert fastconv.get_backend() == "reference"
        assert _backend.ops() is fastconv.reference
    finally:
        fastconv.use_backend("native")
    assert fastconv.get_backend() == "native"
    assert _backend.ops() is fastconv.functional
    assert "reference" in repr(sw)


def test_backend_context_manager_restores_even_on_error():
    with fastconv.use_backend("reference"):
        assert fastconv.get_backend() == "reference"
        with fastconv.use_backend("native"):
            assert fastconv.get_backend() == "native"
        assert fastconv.get_backend() == "reference"
    assert fastconv.get_backend() == "native"
    with pytest.raises(KeyError):
        with fastconv.use_backend("reference"):
            raise KeyError("boom")
    assert fastconv.get_backend() == "native"


@pytest.mark.parametrize("bad", ["numpy", "Native", "", None, 1])
def test_backend_invalid_name(bad):
    with pytest.raises(ValueError, match="'native', 'reference'"):
        fastconv.use_backend(bad)
    assert fastconv.get_backend() == "native"


# ---------------------------------------------------------------- native vs reference

# Only layers whose forward or backward calls fastconv's kernels (through
# fastconv._backend.ops()): the others would compare one NumPy computation with itself.


def _layer_cases(dtype):
    kw = dict(dtype=dtype)
    return [
        ("conv", lambda: nn.Conv2D(3, 8, 3, **kw, seed=1), (4, 3, 9, 9)),
        ("conv_s2_p1", lambda: nn.Conv2D(3, 8, 3, stride=2, padding=1, **kw, seed=1), (4, 3, 9, 8)),
        ("conv_groups", lambda: nn.Conv2D(4, 8, 3, padding=1, groups=2, **kw, seed=1), (2, 4, 7, 7)),
        ("conv_depthwise", lambda: nn.Conv2D(6, 6, 3, padding=1, groups=6, **kw, seed=1), (2, 6, 7, 7)),
        ("conv_dil", lambda: nn.Conv2D(2, 4, (3, 2), dilation=2, padding="same", **kw, seed=1), (2, 2, 8, 9)),
        ("conv_nobias", lambda: nn.Conv2D(3, 4, 1, bias=False, **kw, seed=1), (2, 3, 5, 5)),
        ("maxpool", lambda: nn.MaxPool2D(2, **kw), (3, 4, 8, 8)),
        ("maxpool_3s2p1", lambda: nn.MaxPool2D(3, 2, 1, **kw), (3, 4, 9, 9)),
        ("maxpool_ceil", lambda: nn.MaxPool2D(3, 2, ceil_mode=True, **kw), (2, 3, 8, 8)),
        ("avgpool", lambda: nn.AvgPool2D(2, **kw), (3, 4, 8, 8)),
        ("avgpool_nopad", lambda: nn.AvgPool2D(3, 2, 1, count_include_pad=False, **kw), (3, 4, 9, 9)),
        ("relu", lambda: nn.ReLU(**kw), (3, 4, 5, 5)),
        ("linear", lambda: nn.Linear(12, 5, **kw, seed=1), (6, 12)),
        ("sequential", lambda: nn.Sequential(nn.Conv2D(3, 4, 3, **kw, seed=1), nn.ReLU(**kw),
                                             nn.MaxPool2D(2, **kw), nn.Flatten(**kw),
                                             nn.Linear(4 * 3 * 3, 5, **kw, seed=2)), (2, 3, 8, 8)),
        ("residual", lambda: nn.Residual(
            nn.Sequential(nn.Conv2D(3, 6, 3, stride=2, padding=1, **kw, seed=1), nn.BatchNorm2D(6, **kw),
                          nn.ReLU(**kw)),
            nn.Sequential(nn.Conv2D(3, 6, 1, stride=2, **kw, seed=2), nn.BatchNorm2D(6, **kw))),
         (2, 3, 8, 8)),
        ("concat", lambda: nn.Concat(nn.Conv2D(3, 2, 1, **kw, seed=1), nn.MaxPool2D(3, 1, 1, **kw),
                                     nn.Sequential(nn.AvgPool2D(3, 1, 1, **kw), nn.ReLU(**kw))),
         (2, 3, 6, 6)),
    ]


def _run(make, x, dy_seed=7):
    layer = make()
    layer.input_grad = True
    y = layer.forward(x)
    dy = rand(y.shape, x.dtype, dy_seed)
    dx = layer.backward(dy)
    grads = [p.grad.copy() for p in layer.parameters()]
    buffers = [b.copy() for _, b in layer.named_buffers()]
    return y, dx, grads, buffers


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("case", _layer_cases(F64), ids=lambda c: c[0])
def test_native_matches_reference(case, dtype):
    name, _, shape = case
    make = dict((n, m) for n, m, _ in _layer_cases(dtype))[name]
    x = rand(shape, dtype, 3)
    out_n = _run(make, x)
    with fastconv.use_backend("reference"):
        out_r = _run(make, x)
    tol = dict(rtol=1e-11, atol=1e-12) if dtype == F64 else dict(rtol=2e-4, atol=2e-5)
    for a, b in zip(out_n[:2], out_r[:2]):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_allclose(a, b, **tol)
    for a, b in zip(out_n[2] + out_n[3], out_r[2] + out_r[3]):
        np.testing.assert_allclose(a, b, **tol)


def _fwd_bwd(layer, x, dy):
    layer.input_grad = True
    y = layer.forward(np.asarray(x, layer.dtype))
    return y, layer.backward(np.asarray(dy, layer.dtype))


@pytest.mark.parametrize("dtype", [F64, F32])
def test_numpy_layers_hand_worked(dtype):
    """The layers written in plain NumPy (the same code on either backend), on inputs whose
    outputs and gradients are worked out by hand below."""
    close = dict(rtol=1e-15 if dtype == F64 else 1e-6, atol=0)
    # GlobalAvgPool2D: plane means; dx = dy / (H*W) spread over the plane.
    #   [[1, 2], [3, 4]] -> 10/4 = 2.5;  [[-1, 0], [5, 8]] -> 12/4 = 3
    y, dx = _fwd_bwd(nn.GlobalAvgPool2D(dtype=dtype), [[[[1, 2], [3, 4]], [[-1, 0], [5, 8]]]],
                     [[4, -8]])
    np.testing.assert_allclose(y, [[2.5, 3.0]], **close)
    np.testing.assert_allclose(dx, [[[[1, 1], [1, 1]], [[-2, -2], [-2, -2]]]], **close)
    # LeakyReLU(0.1): x for x > 0, else 0.1 x (also at 0, where the gradient is the slope)
    y, dx = _fwd_bwd(nn.LeakyReLU(0.1, dtype=dtype), [[-2, -0.5, 0, 3]], [[1, 2, 3, 4]])
    np.testing.assert_allclose(y, [[-0.2, -0.05, 0, 3]], **close)
    np.testing.assert_allclose(dx, [[0.1, 0.2, 0.3, 4]], **close)
    # Sigmoid: s(0) = 1/2, s(ln 3) = 1/(1 + 1/3) = 3/4, s(-ln 3) = 1/4, s(-800) = 0, s(800) = 1;
    # s' = s (1 - s): 1/4, 3/16, 3/16, 0, 0
    ln3 = np.log(3.0)
    y, dx = _fwd_bwd(nn.Sigmoid(dtype=dtype), [[0, ln3, -ln3, -800, 800]], [[1, 2, 4, 1, 1]])
    np.testing.assert_allclose(y, [[0.5, 0.75, 0.25, 0, 1]], **close)
    np.testing.assert_allclose(dx, [[0.25, 0.375, 0.75, 0, 0]], **close)
    # Tanh: tanh(ln 2) = (2 - 1/2)/(2 + 1/2) = 0.6, tanh(ln 3) = (3 - 1/3)/(3 + 1/3) = 0.8;
    # tanh' = 1 - tanh^2: 1, 0.64, 0.36, 0.64
    ln2 = np.log(2.0)
    y, dx = _fwd_bwd(nn.Tanh(dtype=dtype), [[0, ln2, ln3, -ln2]], [[1, 1, 1, 2]])
    np.testing.assert_allclose(y, [[0, 0.6, 0.8, -0.6]], **close)
    np.testing.assert_allclose(dx, [[1, 0.64, 0.36, 1.28]], **close)
    # Flatten: row n holds x[n] in C order (c, h, w); backward puts dy back in that order
    x = np.arange(24).reshape(2, 3, 2, 2)
    y, dx = _fwd_bwd(nn.Flatten(dtype=dtype), x, 10 * np.arange(24).reshape(2, 12))
    np.testing.assert_array_equal(y, [list(range(12)), list(range(12, 24))])
    np.testing.assert_array_equal(dx, 10 * x)


@pytest.mark.parametrize("dtype", [F64, F32])
def test_batchnorm_hand_worked(dtype):
    """One channel of x = [1, 3, 5, 7], eps = 4, weight 2, bias 0.5, momentum 0.1:
    mean 4, deviations [-3, -1, 1, 3], biased variance (9+1+1+9)/4 = 5, var + eps = 9,
    invstd 1/3, xhat = [-1, -1/3, 1/3, 1], y = 2 xhat + 0.5 = [-1.5, -1/6, 7/6, 2.5];
    running_mean = 0.9*0 + 0.1*4 = 0.4, running_var = 0.9*1 + 0.1*(20/3) = 0.9 + 2/3.
    Backward with dy = [1, 0, 0, 0] (n = 4): sum dy = 1, sum dy*xhat = -1, so
    dx = (2/3) (dy - 1/4 - xhat*(-1/4)) = (2/3) [1/2, -1/3, -1/6, 0] = [1/3, -2/9, -1/9, 0],
    weight.grad = sum dy*xhat = -1, bias.grad = sum dy = 1.
    Eval with running_mean 2, running_var 5: y = 2 (x - 2)/3 + 0.5, dx = 2/3 dy."""
    close = dict(rtol=1e-14 if dtype == F64 else 1e-6, atol=1e-15 if dtype == F64 else 1e-6)
    bn = nn.BatchNorm2D(1, eps=4.0, momentum=0.1, dtype=dtype)
    bn.weight.data[...] = 2.0
    bn.bias.data[...] = 0.5
    x = np.array([1, 3, 5, 7], dtype).reshape(1, 1, 1, 4)
    y, dx = _fwd_bwd(bn, x, np.array([1, 0, 0, 0]).reshape(1, 1, 1, 4))
    np.testing.assert_allclose(y.ravel(), [-1.5, -1 / 6, 7 / 6, 2.5], **close)
    np.testing.assert_allclose(bn.running_mean, [0.4], **close)
    np.testing.assert_allclose(bn.running_var, [0.9 + 2 / 3], **close)
    np.testing.assert_allclose(dx.ravel(), [1 / 3, -2 / 9, -1 / 9, 0], **close)
    np.testing.assert_allclose(bn.weight.grad, [-1], **close)
    np.testing.assert_allclose(bn.bias.grad, [1], **close)
    bn.eval()
    bn.running_mean[...] = 2.0
    bn.running_var[...] = 5.0
    y, dx = _fwd_bwd(bn, x, np.array([3, 0, -3, 6]).reshape(1, 1, 1, 4))
    np.testing.assert_allclose(y.ravel(), [-2 / 3 + 0.5, 2 / 3 + 0.5, 2 + 0.5, 10 / 3 + 0.5], **close)
    np.testing.assert_allclose(dx.ravel(), [2, 0, -2, 4], **close)


@pytest.mark.parametrize("dtype", [F64, F32])
def test_numpy_layers_match_float64_formulas(dtype):
    """Random inputs against float64 formulas written here, in other forms than the layers'
    (sigmoid through tanh, leaky ReLU as max + slope * min, means as einsums)."""
    # float32: y rounded to u = 6e-8 moves s(1-s) and 1-t^2 by about u, times |dy| < 4
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == F64 else dict(rtol=2e-6, atol=1e-6)
    x = rand((3, 4, 5, 6), dtype, 3) * 3
    dy = rand((3, 4, 5, 6), dtype, 4)
    x64, dy64 = x.astype(F64), dy.astype(F64)
    s = (1 + np.tanh(x64 / 2)) / 2
    t = np.sinh(x64) / np.cosh(x64)
    cases = [
        (nn.Sigmoid(dtype=dtype), s, dy64 * s * (1 - s)),
        (nn.Tanh(dtype=dtype), t, dy64 / np.cosh(x64) ** 2),
        (nn.LeakyReLU(0.2, dtype=dtype), np.maximum(x64, 0) + 0.2 * np.minimum(x64, 0),
         np.where(x64 > 0, dy64, 0.2 * dy64)),
    ]
    for layer, y_want, dx_want in cases:
        y, dx = _fwd_bwd(layer, x, dy)
        assert y.dtype == dx.dtype == dtype
        np.testing.assert_allclose(y, y_want, **tol, err_msg=repr(layer))
        np.testing.assert_allclose(dx, dx_want, **tol, err_msg=repr(layer))
    g = rand((3, 4), dtype, 5)
    y, dx = _fwd_bwd(nn.GlobalAvgPool2D(dtype=dtype), x, g)
    np.testing.assert_allclose(y, np.einsum("nchw->nc", x64) / 30, **tol)
    np.testing.assert_allclose(dx, np.einsum("nc,hw->nchw", g.astype(F64), np.ones((5, 6))) / 30, **tol)
    # BatchNorm2D in training: the normalised input, and the gradient of sum(dy * y)
    bn = nn.BatchNorm2D(4, dtype=dtype)
    y, dx = _fwd_bwd(bn, x, dy)
    m = x64.mean(axis=(0, 2, 3), keepdims=True)
    v = ((x64 - m) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    xhat = (x64 - m) / np.sqrt(v + 1e-5)
    n = 3 * 5 * 6
    dxhat = dy64
    dx_want = (n * dxhat - dxhat.sum(axis=(0, 2, 3), keepdims=True)
               - xhat * (dxhat * xhat).sum(axis=(0, 2, 3), keepdims=True)) / (n * np.sqrt(v + 1e-5))
    np.testing.assert_allclose(y, xhat, **tol)
    np.testing.assert_allclose(dx, dx_want, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)


@pytest.mark.parametrize("dtype", [F64, F32])
def test_losses_hand_worked(dtype):
    """SoftmaxCrossEntropy and MSELoss on values worked out by hand."""
    close = dict(rtol=1e-14 if dtype == F64 else 1e-5, atol=1e-16 if dtype == F64 else 2e-6)
    ln2, ln3 = np.log(2.0), np.log(3.0)
    # softmax([ln 2, 0, 0]) = [2, 1, 1]/4; softmax([0, ln 3, 0]) = [1, 3, 1]/5 (a constant
    # added to a row changes nothing: +100 on the second). Labels [0, 1]:
    # loss = (-ln(1/2) - ln(3/5))/2 = ln(10/3)/2;
    # dlogits = (softmax - onehot)/N = [[-1/2, 1/4, 1/4], [1/5, -2/5, 1/5]]/2
    logits = np.array([[ln2, 0, 0], [100, 100 + ln3, 100]], dtype)
    ce = nn.SoftmaxCrossEntropy()
    np.testing.assert_allclose(ce.forward(logits, np.array([0, 1])), np.log(10 / 3) / 2, **close)
    np.testing.assert_allclose(ce.backward(), [[-0.25, 0.125, 0.125], [0.1, -0.2, 0.1]], **close)
    np.testing.assert_allclose(ce.backward(2.0), [[-0.5, 0.25, 0.25], [0.2, -0.4, 0.2]], **close)
    # MSE: diff = [[1, 0], [-2, 3]], mean of squares (1 + 0 + 4 + 9)/4 = 3.5,
    # dpred = 2 diff / 4 = [[0.5, 0], [-1, 1.5]]
    mse = nn.MSELoss()
    pred = np.array([[1, 2], [3, 4]], dtype)
    target = np.array([[0, 2], [5, 1]], dtype)
    np.testing.assert_allclose(mse.forward(pred, target), 3.5, **close)
    np.testing.assert_allclose(mse.backward(), [[0.5, 0], [-1, 1.5]], **close)
    np.testing.assert_allclose(mse.backward(3.0), [[1.5, 0], [-3, 4.5]], **close)


def test_losses_match_float64_formulas():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((6, 5)) * 3
    labels = np.array([0, 4, 2, 2, 1, 3])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    ce = nn.SoftmaxCrossEntropy()
    np.testing.assert_allclose(ce.forward(logits, labels), -np.mean(np.log(p[np.arange(6), labels])),
                               rtol=1e-13)
    np.testing.assert_allclose(ce.backward(), (p - np.eye(5)[labels]) / 6, rtol=1e-12, atol=1e-16)
    target = rng.standard_normal((6, 5))
    mse = nn.MSELoss()
    np.testing.assert_allclose(mse.forward(logits, target), np.sum((logits - target) ** 2) / 30, rtol=1e-14)
    np.testing.assert_allclose(mse.backward(), (logits - target) / 15, rtol=1e-14)


# ---------------------------------------------------------------- Parameter and Module


def test_parameter_basics():
    p = nn.Parameter(np.ones((2, 3), F32))
    assert p.shape == (2, 3) and p.dtype == F32 and p.requires_grad
    assert p.grad.shape == (2, 3) and p.grad.dtype == F32 and not p.grad.any()
    assert "Parameter(shape=(2, 3)" in repr(p)
    with pytest.raises(TypeError, match="float32 or numpy.float64"):
        nn.Parameter(np.ones(3, np.int32))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        nn.Parameter([1.0, 2.0])


def test_weight_shapes_and_init():
    conv = nn.Conv2D(8, 16, (3, 5), groups=2, seed=0)
    assert conv.weight.shape == (16, 4, 3, 5) and conv.bias.shape == (16,)
    assert conv.weight.dtype == F32 and not conv.bias.data.any()
    big = nn.Conv2D(64, 256, 3, seed=1, dtype=F64)
    np.testing.assert_allclose(big.weight.data.std(), np.sqrt(2 / (64 * 9)), rtol=0.02)
    lin = nn.Linear(400, 300, seed=0, dtype=F64)
    assert lin.weight.shape == (300, 400)
    np.testing.assert_allclose(lin.weight.data.std(), np.sqrt(2 / 400), rtol=0.02)
    u = nn.Linear(400, 300, init="he_uniform", seed=0, dtype=F64)
    assert np.abs(u.weight.data).max() <= np.sqrt(6 / 400)
    x = nn.Linear(400, 300, init="xavier_uniform", seed=0, dtype=F64)
    assert np.abs(x.weight.data).max() <= np.sqrt(6 / 700)
    # same seed, same weights; float32 is the float64 draw rounded
    a, b = nn.Conv2D(3, 4, 3, seed=5), nn.Conv2D(3, 4, 3, seed=5, dtype=F64)
    np.testing.assert_array_equal(a.weight.data, b.weight.data.astype(F32))
    assert not np.array_equal(a.weight.data, nn.Conv2D(3, 4, 3, seed=6).weight.data)


def _net(dtype=F64, seed=0):
    return nn.Sequential(
        nn.Conv2D(1, 2, 3, dtype=dtype, seed=seed), nn.BatchNorm2D(2, dtype=dtype), nn.ReLU(dtype=dtype),
        nn.Flatten(dtype=dtype), nn.Linear(2 * 4 * 4, 3, dtype=dtype, seed=seed + 1),
    )


def test_parameters_and_names():
    net = _net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
    assert [p.shape for p in net.parameters()] == [(2, 1, 3, 3), (2,), (2,), (2,), (3, 32), (3,)]
    assert len(list(net.children())) == 5
    shared = nn.Linear(3, 3, dtype=F64, seed=0)
    twice = nn.Sequential(shared, nn.ReLU(dtype=F64), shared)
    assert len(twice.parameters()) == 2  # no duplicates
    assert net.num_parameters() == 2 * 9 + 2 + 2 + 2 + 96 + 3
    assert [n for n, _ in net.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]


def test_repr_is_readable():
    r = repr(_net())
    assert "(0): Conv2D(1, 2, kernel_size=(3, 3), stride=(1, 1), dtype=float64)" in r
    assert "(4): Linear(in_features=32, out_features=3, dtype=float64)" in r
    assert repr(nn.MaxPool2D(2)) == "MaxPool2D(kernel_size=(2, 2), stride=(2, 2))"
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25)"
    assert "axis=1" in repr(nn.Concat(nn.ReLU(), nn.ReLU()))


def test_train_eval_recursive():
    net = _net()
    assert net.eval() is net
    assert all(not m.training for m in net.modules())
    assert net.train() is net
    assert all(m.training for m in net.modules())


def test_gradients_accumulate_until_zero_grad():
    net = _net()
    x = rand((2, 1, 6, 6))
    y = net.forward(x)
    dy = rand(y.shape, seed=1)
    net.backward(dy)
    first = [p.grad.copy() for p in net.parameters()]
    net.forward(x)
    net.backward(dy)
    for p, g in zip(net.parameters(), first):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-12)
    net.zero_grad()
    assert all(not p.grad.any() for p in net.parameters())


def test_freeze_unfreeze():
    net = _net()
    assert net[0].freeze() is net[0]
    assert not net[0].weight.requires_grad and not net[0].bias.requires_grad
    x = rand((2, 1, 6, 6))
    y = net.forward(x)
    net.backward(rand(y.shape, seed=1))
    assert not net[0].weight.grad.any() and not net[0].bias.grad.any()
    assert net[4].weight.grad.any()
    assert net.num_parameters(trainable_only=True) == net.num_parameters() - 20
    net.unfreeze()
    assert all(p.requires_grad for p in net.parameters())


def test_input_grad_first_layer_and_need_dx(monkeypatch):
    net = _net()
    x = rand((2, 1, 6, 6))
    y = net.forward(x)
    dy = rand(y.shape, seed=1)
    assert net.backward(dy).shape == x.shape
    ref = [p.grad.copy() for p in net.parameters()]
    net.zero_grad()
    calls = []
    real = fastconv.functional.conv2d_backward

    def spy(*args, **kw):
        calls.append(kw.get("need_dx"))
        return real(*args, **kw)

    monkeypatch.setattr(fastconv.functional, "conv2d_backward", spy)
    net.input_grad = False
    net.forward(x)
    assert net.backward(dy) is None
    assert calls == [False]  # the first layer did not compute the gradient of its input
    assert net[0].input_grad is False and net[1].input_grad is True
    for p, g in zip(net.parameters(), ref):
        np.testing.assert_allclose(p.grad, g, rtol=1e-12)


def test_frozen_prefix_is_skipped_in_backward():
    net = _net()
    net.input_grad = False
    net[0].freeze()
    net[1].freeze()
    x = rand((2, 1, 6, 6))
    y = net.forward(x)
    assert net.backward(rand(y.shape, seed=1)) is None
    # nothing before the Linear layer learns: its input gradient is not needed
    assert [m.input_grad for m in net] == [False, False, False, False, False]
    assert net[4].weight.grad.any()


def test_backward_before_forward():
    for layer in [nn.Conv2D(1, 1, 1), nn.MaxPool2D(2), nn.AvgPool2D(2), nn.GlobalAvgPool2D(), nn.ReLU(),
                  nn.LeakyReLU(), nn.Sigmoid(), nn.Tanh(), nn.Linear(2, 2), nn.Flatten(), nn.Dropout(),
                  nn.BatchNorm2D(2), nn.Sequential(nn.ReLU()), nn.Residual(nn.ReLU()),
                  nn.Concat(nn.ReLU())]:
        with pytest.raises(RuntimeError, match="before forward"):
            layer.backward(np.zeros((1, 2, 2, 2), F32))
    for loss in [nn.SoftmaxCrossEntropy(), nn.MSELoss()]:
        with pytest.raises(RuntimeError, match="before forward"):
            loss.backward()


def test_state_dict_round_trip():
    a = _net(seed=0)
    a.forward(rand((4, 1, 6, 6)))  # move BatchNorm running stats
    sd = a.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked", "4.weight", "4.bias"]
    assert sd["1.num_batches_tracked"] == 1
    sd["0.weight"][...] = 0  # a copy: the model is untouched
    assert a[0].weight.data.any()
    sd = a.state_dict()
    b = _net(seed=10)
    w_before = b[0].weight
    assert b.load_state_dict(sd) == ([], [])
    assert b[0].weight is w_before  # loaded in place
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    x = rand((2, 1, 6, 6), seed=3)
    np.testing.assert_array_equal(a.eval().forward(x), b.eval().forward(x))


def test_load_state_dict_errors_leave_model_unchanged():
    net = _net()
    before = net.state_dict()
    sd = net.state_dict()
    sd["4.weight"] = np.zeros((3, 31))
    sd["0.bias"] = np.ones(2)
    with pytest.raises(ValueError, match=r"'4.weight'.*\(3, 31\).*\(3, 32\)"):
        net.load_state_dict(sd)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])  # 0.bias not written
    sd = net.state_dict()
    sd["1.running_var"] = sd["1.running_var"].astype(F32)
    with pytest.raises(TypeError, match="'1.running_var'.*float32.*float64"):
        net.load_state_dict(sd)
    sd = net.state_dict()
    del sd["0.bias"]
    sd["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys \['0.bias'\].*unexpected keys \['extra'\]"):
        net.load_state_dict(sd)
    assert net.load_state_dict(sd, strict=False) == (["0.bias"], ["extra"])


def test_to_dtype_and_container_dtypes():
    net = _net(F32)
    assert net.to(F64) is net
    assert all(p.dtype == F64 and p.grad.dtype == F64 for p in net.parameters())
    assert net[1].running_mean.dtype == F64 and net[1].num_batches_tracked.dtype == np.int64
    assert net.forward(rand((1, 1, 6, 6))).dtype == F64
    with pytest.raises(TypeError, match="different dtypes.*0 Conv2D: float64, 1 ReLU: float32"):
        nn.Sequential(nn.Conv2D(1, 1, 1, dtype=F64), nn.ReLU())
    s = nn.Sequential(nn.Conv2D(1, 1, 1, dtype=F64), nn.ReLU(), dtype=F64)
    assert all(m.dtype == F64 for m in s.modules())


def test_container_seed_rebuilds_same_network():
    a = nn.Sequential(nn.Conv2D(1, 2, 3), nn.ReLU(), nn.Linear(3, 3), seed=11)
    b = nn.Sequential(nn.Conv2D(1, 2, 3), nn.ReLU(), nn.Linear(3, 3), seed=11)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)
    w = b[0].weight.data.copy()
    assert b.reset_parameters(12) is b
    assert not np.array_equal(b[0].weight.data, w)
    b.reset_parameters(11)
    np.testing.assert_array_equal(b[0].weight.data, w)


# ---------------------------------------------------------------- Dropout and BatchNorm


def test_dropout_train_vs_eval():
    d = nn.Dropout(0.25, dtype=F64, seed=3)
    x = np.ones((200, 50))
    y = d.forward(x)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    dx = d.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(dx, np.where(kept, 2 / 0.75, 0.0))
    d.eval()
    assert d.forward(x) is x
    np.testing.assert_array_equal(d.backward(x), x)
    # seeded: the same seed gives the same masks; a new forward a new mask
    d2 = nn.Dropout(0.25, dtype=F64, seed=3)
    np.testing.assert_array_equal(d2.forward(x), y)
    assert not np.array_equal(d2.forward(x), y)
    assert not nn.Dropout(1.0, dtype=F64).forward(x).any()
    np.testing.assert_array_equal(nn.Dropout(0.0, dtype=F64).forward(x), x)


def test_batchnorm_train_vs_eval():
    bn = nn.BatchNorm2D(3, momentum=0.2, dtype=F64)
    x = rand((4, 3, 5, 5)) * 3 + 2
    y = bn.forward(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-4)  # eps
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean, 0.2 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.8 + 0.2 * var, rtol=1e-12)
    bn.eval()
    rm, rv = bn.running_mean.copy(), bn.running_var.copy()
    ye = bn.forward(x)
    np.testing.assert_array_equal(bn.running_mean, rm)  # eval does not update
    expect = (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5)
    np.testing.assert_allclose(ye, expect, rtol=1e-12)
    assert int(bn.num_batches_tracked) == 1


def test_batchnorm_cumulative_momentum_and_errors():
    bn = nn.BatchNorm2D(2, momentum=None, dtype=F64)
    xs = [rand((3, 2, 2, 2), seed=s) for s in range(3)]
    for x in xs:
        bn.forward(x)
    np.testing.assert_allclose(bn.running_mean, np.mean([x.mean(axis=(0, 2, 3)) for x in xs], axis=0))
    with pytest.raises(ValueError, match="more than one value per channel"):
        bn.forward(np.zeros((1, 2, 1, 1)))


def test_batchnorm_and_losses_against_torch():
    torch = pytest.importorskip("torch")
    x = rand((4, 3, 5, 5)) * 2 + 1
    dy = rand((4, 3, 5, 5), seed=1)
    bn = nn.BatchNorm2D(3, dtype=F64)
    bn.weight.data[...] = [0.5, 1.5, 2.0]
    bn.bias.data[...] = [0.1, -0.2, 0.3]
    tbn = torch.nn.BatchNorm2d(3).double()
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor(bn.weight.data))
        tbn.bias.copy_(torch.tensor(bn.bias.data))
    for mode in ["train", "eval"]:
        getattr(bn, mode)()
        getattr(tbn, mode)()
        tx = torch.tensor(x, requires_grad=True)
        ty = tbn(tx)
        ty.backward(torch.tensor(dy))
        bn.zero_grad()
        y = bn.forward(x)
        dx = bn.backward(dy)
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.weight.grad, tbn.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(bn.bias.grad, tbn.bias.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(bn.running_mean, tbn.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(bn.running_var, tbn.running_var.numpy(), rtol=1e-12)
        tbn.weight.grad = tbn.bias.grad = None
    logits = rand((5, 4)) * 4
    labels = np.array([3, 0, 1, 1, 2])
    tl = torch.tensor(logits, requires_grad=True)
    tv = torch.nn.functional.cross_entropy(tl, torch.tensor(labels))
    tv.backward()
    ce = nn.SoftmaxCrossEntropy()
    np.testing.assert_allclose(ce.forward(logits, labels), tv.item(), rtol=1e-13)
    np.testing.assert_allclose(ce.backward(), tl.grad.numpy(), rtol=1e-12, atol=1e-15)
    target = rand((5, 4), seed=2)
    tl.grad = None
    tv = torch.nn.functional.mse_loss(tl, torch.tensor(target))
    tv.backward()
    mse = nn.MSELoss()
    np.testing.assert_allclose(mse.forward(logits, target), tv.item(), rtol=1e-13)
    np.testing.assert_allclose(mse.backward(), tl.grad.numpy(), rtol=1e-13)


# ---------------------------------------------------------------- containers and losses


def test_residual_and_concat_forward():
    x = rand((2, 3, 4, 4))
    relu = nn.ReLU(dtype=F64)
    np.testing.assert_array_equal(nn.Residual(relu).forward(x), np.maximum(x, 0) + x)
    with pytest.raises(ValueError, match="projection shortcut"):
        nn.Residual(nn.Conv2D(3, 4, 1, dtype=F64)).forward(x)
    cat = nn.Concat(nn.ReLU(dtype=F64), nn.Tanh(dtype=F64))
    y = cat.forward(x)
    assert y.shape == (2, 6, 4, 4)
    np.testing.assert_array_equal(y[:, 3:], np.tanh(x))
    dx = cat.backward(np.ones_like(y))
    np.testing.assert_allclose(dx, (x > 0) + (1 - np.tanh(x) ** 2))
    with pytest.raises(ValueError, match="must agree except along axis 1"):
        nn.Concat(nn.ReLU(dtype=F64), nn.MaxPool2D(2, dtype=F64)).forward(x)
    with pytest.raises(ValueError, match="batch axis"):
        nn.Concat(nn.ReLU(), axis=0)
    y3 = nn.Concat(nn.ReLU(dtype=F64), nn.ReLU(dtype=F64), axis=-1).forward(x)
    assert y3.shape == (2, 3, 4, 8)


def test_softmax_cross_entropy_stable_and_validated():
    ce = nn.SoftmaxCrossEntropy()
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]], F32)
    v = ce.forward(logits, np.array([0, 1]))
    assert v == 0.0
    assert np.isfinite(ce.forward(logits, np.array([2, 0])))
    np.testing.assert_allclose(ce.forward(np.zeros((3, 4)), [0, 1, 2]), np.log(4), rtol=1e-15)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\), got labels\[1\] = 4"):
        ce.forward(np.zeros((3, 4)), np.array([0, 4, 1]))
    with pytest.raises(TypeError, match="integer class indices"):
        ce.forward(np.zeros((3, 4)), np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        ce.forward(np.zeros((3, 4)), np.array([0, 1]))
    with pytest.raises(ValueError, match="2-d"):
        ce.forward(np.zeros((3, 4, 1)), np.array([0, 1, 1]))
    with pytest.raises(TypeError, match="float64 logits, got float32"):
        nn.SoftmaxCrossEntropy(dtype=F64).forward(np.zeros((3, 4), F32), np.array([0, 1, 1]))
    with pytest.raises(TypeError, match="cast one"):
        nn.MSELoss().forward(np.zeros(3), np.zeros(3, F32))
    with pytest.raises(ValueError, match="shape of pred"):
        nn.MSELoss().forward(np.zeros(3), np.zeros(4))


# ---------------------------------------------------------------- validation messages


def test_forward_input_errors_name_the_layer():
    conv = nn.Conv2D(3, 4, 3)
    with pytest.raises(TypeError, match=r"Conv2D\(3, 4, .*\) expects float32 input, got float64.*dtype=numpy.float64"):
        conv.forward(np.zeros((1, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"Conv2D\(3, 4.*expects 3 input channels.*\(1, 2, 5, 5\)"):
        conv.forward(np.zeros((1, 2, 5, 5), F32))
    with pytest.raises(ValueError, match="4-d input"):
        conv.forward(np.zeros((3, 5, 5), F32))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        conv.forward([[1.0]])
    with pytest.raises(TypeError, match=r"ReLU\(\) expects float32 input, got int64"):
        nn.ReLU().forward(np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"Linear.*\(N, 8\).*Flatten"):
        nn.Linear(8, 2).forward(np.zeros((2, 2, 2, 2), F32))
    with pytest.raises(ValueError, match=r"BatchNorm2D\(4.*expects 4 input channels"):
        nn.BatchNorm2D(4).forward(np.zeros((2, 3, 2, 2), F32))
    relu = nn.ReLU()
    relu.forward(np.zeros((2, 3), F32))
    with pytest.raises(ValueError, match=r"forward output's shape \(2, 3\)"):
        relu.backward(np.zeros((3, 2), F32))
    with pytest.raises(TypeError, match="expects float32 dy"):
        relu.backward(np.zeros((2, 3)))


@pytest.mark.parametrize("make, exc, msg", [
    (lambda: nn.Conv2D(0, 4, 3), ValueError, "in_channels must be a positive int, got 0"),
    (lambda: nn.Conv2D(3, 4, 3, groups=2), ValueError, "in_channels=3 must be divisible by groups=2"),
    (lambda: nn.Conv2D(4, 3, 3, groups=2), ValueError, "out_channels=3 must be divisible by groups=2"),
    (lambda: nn.Conv2D(3, 4, 0), ValueError, "kernel_size must be positive"),
    (lambda: nn.Conv2D(3, 4, 2.0), TypeError, "kernel_size must be an int"),
    (lambda: nn.Conv2D(3, 4, 3, stride=2, padding="same"), ValueError, "stride 1"),
    (lambda: nn.Conv2D(3, 4, 3, padding=-1), ValueError, "padding must be >= 0"),
    (lambda: nn.Conv2D(3, 4, 3, bias=None), TypeError, "bias must be True or False"),
    (lambda: nn.Conv2D(3, 4, 3, init="glorot"), ValueError, "init must be one of"),
    (lambda: nn.Conv2D(3, 4, 3, dtype=np.int32), TypeError, "dtype must be numpy.float32 or numpy.float64"),
    (lambda: nn.Conv2D(3, 4, 3, seed=-1), ValueError, "seed must be an int >= 0"),
    (lambda: nn.MaxPool2D(2, padding=2), ValueError, "at most half"),
    (lambda: nn.AvgPool2D(2, ceil_mode=1), TypeError, "ceil_mode must be True or False"),
    (lambda: nn.Linear(3, True), TypeError, "out_features must be an int, got bool"),
    (lambda: nn.Dropout(1.5), ValueError, r"p must be in \[0.0, 1.0\]"),
    (lambda: nn.BatchNorm2D(3, eps=0), ValueError, "eps must be in"),
    (lambda: nn.BatchNorm2D(3, momentum=2), ValueError, "momentum must be in"),
    (lambda: nn.LeakyReLU("x"), TypeError, "negative_slope must be a real number"),
    (lambda: nn.Sequential(nn.ReLU(), "relu"), TypeError, "layer 1 must be a fastconv.nn.Module"),
    (lambda: nn.Concat(), ValueError, "at least one branch"),
])
def test_constructor_errors(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


def test_both_dtypes_supported_throughout():
    for dt in (F32, F64):
        net = nn.Sequential(
            nn.Conv2D(2, 4, 3, padding=1, dtype=dt, seed=0), nn.BatchNorm2D(4, dtype=dt),
            nn.LeakyReLU(dtype=dt), nn.AvgPool2D(2, dtype=dt), nn.Dropout(0.1, dtype=dt, seed=0),
            nn.Residual(nn.Sequential(nn.Conv2D(4, 4, 3, padding=1, dtype=dt, seed=1), nn.Sigmoid(dtype=dt))),
            nn.Concat(nn.MaxPool2D(3, 1, 1, dtype=dt), nn.Tanh(dtype=dt)),
            nn.GlobalAvgPool2D(dtype=dt), nn.Linear(8, 3, dtype=dt, seed=2),
        )
        x = rand((3, 2, 6, 6), dt)
        y = net.forward(x)
        assert y.dtype == dt
        dx = net.backward(np.ones_like(y))
        assert dx.dtype == dt and dx.shape == x.shape
        assert all(p.grad.dtype == dt for p in net.parameters())
