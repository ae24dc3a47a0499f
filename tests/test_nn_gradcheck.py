"""Finite-difference gradient checks of every layer, through the layer API, in float64.

For a layer f and a fixed random r, L = sum(f(x) * r). ``backward(r)`` must give
dL/dx and accumulate dL/dparam; both are compared with central differences
(L(x + e) - L(x - e)) / 2e at every coordinate of small inputs (or a random
sample of coordinates for the larger tensors). Each check runs on both backends.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import nn

F64 = np.float64
EPS = 1e-6


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Thousands of tiny kernel calls: thread start-up would dominate on a busy machine.
    prev = fastconv.set_num_threads(1)
    yield
    fastconv.set_num_threads(prev)


@pytest.fixture(params=["native", "reference"])
def backend(request):
    with fastconv.use_backend(request.param):
        yield request.param


def _coords(shape, rng, limit):
    size = int(np.prod(shape))
    flat = np.arange(size) if size <= limit else rng.choice(size, limit, replace=False)
    return [np.unravel_index(i, shape) for i in flat]


def gradcheck(module, x, seed=0, limit=40, rtol=1e-6, atol=1e-8, reseed=None):
    """Compare backward with central differences for the input and every parameter.

    ``reseed`` (a callable) is run before every forward, e.g. to replay a Dropout mask.
    """
    rng = np.random.default_rng(seed)
    module.input_grad = True

    def fwd(inp):
        if reseed is not None:
            reseed()
        return module.forward(inp)

    y = fwd(x)
    r = rng.standard_normal(y.shape)
    module.zero_grad()
    y = fwd(x)
    dx = module.backward(r)
    assert dx is not None and dx.shape == x.shape and dx.dtype == x.dtype

    def loss():
        return float(np.sum(fwd(x) * r))

    def numeric(arr, idx):
        orig = arr[idx]
        arr[idx] = orig + EPS
        lp = loss()
        arr[idx] = orig - EPS
        lm = loss()
        arr[idx] = orig
        return (lp - lm) / (2 * EPS)

    xs = x.copy()
    checks = [("input", x, dx)]
    checks += [(name, p.data, p.grad.copy()) for name, p in module.named_parameters()]
    for name, arr, analytic in checks:
        idxs = _coords(arr.shape, rng, limit)
        num = np.array([numeric(arr, i) for i in idxs])
        ana = np.array([analytic[i] for i in idxs])
        np.testing.assert_allclose(ana, num, rtol=rtol, atol=atol, err_msg=f"gradient of {name}")
    np.testing.assert_array_equal(x, xs)  # restored


def _x(shape, seed=1, away_from_zero=False, distinct=False):
    rng = np.random.default_rng(seed)
    if distinct:  # well-separated values: no max-pool ties within EPS
        n = int(np.prod(shape))
        return (rng.permutation(n).reshape(shape) * 0.05 - n * 0.025).astype(F64)
    x = rng.standard_normal(shape)
    if away_from_zero:  # no ReLU / LeakyReLU kink within EPS
        x = np.sign(x) * (0.1 + np.abs(x))
    return x


CONV_CASES = [
    dict(cin=3, cout=4, k=3),
    dict(cin=3, cout=4, k=3, stride=2, padding=1),
    dict(cin=4, cout=6, k=(3, 2), padding=(1, 0), groups=2),
    dict(cin=2, cout=3, k=3, dilation=2, padding=2),
    dict(cin=2, cout=2, k=4, padding="same", bias=False),
    dict(cin=4, cout=4, k=3, padding=1, groups=4),
    dict(cin=3, cout=5, k=1, stride=(2, 1)),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_conv2d(backend, case):
    c = dict(case)
    layer = nn.Conv2D(c.pop("cin"), c.pop("cout"), c.pop("k"), **c, dtype=F64, seed=3)
    if layer.bias is not None:
        layer.bias.data[...] = np.random.default_rng(4).standard_normal(layer.bias.shape)
    gradcheck(layer, _x((2, layer.in_channels, 7, 6)))


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=(2, 3), stride=1, dilation=(1, 2)),
                                dict(kernel_size=3, stride=2, ceil_mode=True)])
def test_max_pool(backend, kw):
    gradcheck(nn.MaxPool2D(**kw, dtype=F64), _x((2, 3, 7, 8), distinct=True))


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
                                dict(kernel_size=2, stride=2, ceil_mode=True)])
def test_avg_pool(backend, kw):
    gradcheck(nn.AvgPool2D(**kw, dtype=F64), _x((2, 3, 7, 7)))


def test_global_avg_pool(backend):
    gradcheck(nn.GlobalAvgPool2D(dtype=F64), _x((3, 4, 5, 6)))


@pytest.mark.parametrize("make", [lambda: nn.ReLU(dtype=F64), lambda: nn.LeakyReLU(0.2, dtype=F64),
                                  lambda: nn.Sigmoid(dtype=F64), lambda: nn.Tanh(dtype=F64)],
                         ids=["relu", "leaky_relu", "sigmoid", "tanh"])
def test_activations(backend, make):
    gradcheck(make(), _x((2, 3, 4, 5), away_from_zero=True))


def test_activations_2d(backend):
    gradcheck(nn.ReLU(dtype=F64), _x((5, 7), away_from_zero=True))


def test_sigmoid_large_inputs():
    x = np.array([[-800.0, -30.0, 0.0, 30.0, 800.0]])
    gradcheck(nn.Sigmoid(dtype=F64), x, atol=1e-10)


@pytest.mark.parametrize("bias", [True, False])
def test_linear(backend, bias):
    layer = nn.Linear(6, 4, bias=bias, dtype=F64, seed=2)
    gradcheck(layer, _x((5, 6)))


def test_flatten(backend):
    gradcheck(nn.Flatten(dtype=F64), _x((2, 3, 4, 2)))


def test_dropout_fixed_mask(backend):
    layer = nn.Dropout(0.4, dtype=F64, seed=5)
    gradcheck(layer, _x((3, 4, 5)), reseed=lambda: layer.reset_parameters(5))
    layer.eval()
    gradcheck(layer, _x((3, 4, 5)))


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_train(backend, affine):
    layer = nn.BatchNorm2D(3, affine=affine, dtype=F64)
    if affine:
        rng = np.random.default_rng(6)
        layer.weight.data[...] = rng.uniform(0.5, 1.5, 3)
        layer.bias.data[...] = rng.standard_normal(3)
    gradcheck(layer, _x((4, 3, 3, 2)) * 2 + 1, rtol=1e-5, atol=1e-7)


def test_batchnorm_eval(backend):
    layer = nn.BatchNorm2D(3, dtype=F64)
    layer.forward(_x((4, 3, 3, 3), seed=9))  # move the running statistics
    layer.weight.data[...] = [0.5, 1.0, 2.0]
    layer.eval()
    gradcheck(layer, _x((2, 3, 3, 3)))


def test_sequential(backend):
    net = nn.Sequential(
        nn.Conv2D(2, 4, 3, padding=1, dtype=F64, seed=1), nn.Tanh(dtype=F64),
        nn.AvgPool2D(2, dtype=F64), nn.Conv2D(4, 3, 2, dtype=F64, seed=2), nn.Flatten(dtype=F64),
        nn.Linear(3 * 2 * 2, 5, dtype=F64, seed=3),
    )
    gradcheck(net, _x((2, 2, 6, 6)), limit=25)


def test_residual_identity(backend):
    body = nn.Sequential(nn.Conv2D(3, 3, 3, padding=1, dtype=F64, seed=1), nn.Tanh(dtype=F64),
                         nn.Conv2D(3, 3, 3, padding=1, dtype=F64, seed=2))
    gradcheck(nn.Residual(body), _x((2, 3, 5, 5)), limit=25)


def test_residual_projection_with_batchnorm(backend):
    body = nn.Sequential(nn.Conv2D(2, 4, 3, stride=2, padding=1, bias=False, dtype=F64, seed=1),
                         nn.BatchNorm2D(4, dtype=F64), nn.Sigmoid(dtype=F64))
    shortcut = nn.Sequential(nn.Conv2D(2, 4, 1, stride=2, bias=False, dtype=F64, seed=2),
                             nn.BatchNorm2D(4, dtype=F64))
    gradcheck(nn.Residual(body, shortcut), _x((3, 2, 6, 6)), limit=25, rtol=1e-5, atol=1e-7)


def test_concat(backend):
    net = nn.Concat(
        nn.Conv2D(3, 2, 1, dtype=F64, seed=1),
        nn.Sequential(nn.Conv2D(3, 4, 3, padding=1, dtype=F64, seed=2), nn.Tanh(dtype=F64)),
        nn.AvgPool2D(3, stride=1, padding=1, dtype=F64),
    )
    gradcheck(net, _x((2, 3, 5, 4)), limit=25)


def test_maxpool_relu_network(backend):
    net = nn.Sequential(nn.MaxPool2D(2, dtype=F64), nn.ReLU(dtype=F64), nn.Flatten(dtype=F64),
                        nn.Linear(12, 3, dtype=F64, seed=1))
    x = _x((2, 3, 4, 4), distinct=True)
    x[np.abs(x) < 0.01] += 0.02  # no ReLU kink
    gradcheck(net, x)


# ---------------------------------------------------------------- losses


def _loss_gradcheck(loss_fn, pred, target, grad=1.0):
    value = loss_fn.forward(pred, target)
    assert isinstance(value, float)
    g = loss_fn.backward(grad)
    assert g.shape == pred.shape and g.dtype == pred.dtype
    num = np.zeros_like(pred)
    for idx in np.ndindex(pred.shape):
        orig = pred[idx]
        pred[idx] = orig + EPS
        lp = loss_fn.forward(pred, target)
        pred[idx] = orig - EPS
        lm = loss_fn.forward(pred, target)
        pred[idx] = orig
        num[idx] = grad * (lp - lm) / (2 * EPS)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_softmax_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    _loss_gradcheck(nn.SoftmaxCrossEntropy(), logits, labels)
    _loss_gradcheck(nn.SoftmaxCrossEntropy(dtype=F64), logits, labels, grad=0.5)


def test_softmax_cross_entropy_large_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0]])
    _loss_gradcheck(nn.SoftmaxCrossEntropy(), logits, np.array([0, 2]))


def test_mse():
    rng = np.random.default_rng(1)
    pred = rng.standard_normal((3, 2, 4))
    target = rng.standard_normal((3, 2, 4))
    _loss_gradcheck(nn.MSELoss(), pred, target)
    _loss_gradcheck(nn.MSELoss(), pred, target, grad=3.0)


def test_lenet_like_end_to_end(backend):
    """Gradient of the cross-entropy loss of a whole small network w.r.t. its parameters."""
    net = nn.Sequential(
        nn.Conv2D(1, 3, 3, dtype=F64, seed=1), nn.ReLU(dtype=F64), nn.MaxPool2D(2, dtype=F64),
        nn.Flatten(dtype=F64), nn.Linear(3 * 3 * 3, 4, dtype=F64, seed=2),
    )
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 1, 8, 8))
    labels = np.array([0, 3, 2])
    loss_fn = nn.SoftmaxCrossEntropy()
    net.input_grad = False
    net.zero_grad()
    loss_fn.forward(net.forward(x), labels)
    assert net.backward(loss_fn.backward()) is None
    for name, p in net.named_parameters():
        for idx in _coords(p.shape, rng, 15):
            orig = p.data[idx]
            p.data[idx] = orig + EPS
            lp = loss_fn.forward(net.forward(x), labels)
            p.data[idx] = orig - EPS
            lm = loss_fn.forward(net.forward(x), labels)
            p.data[idx] = orig
            np.testing.assert_allclose(p.grad[idx], (lp - lm) / (2 * EPS), rtol=1e-5, atol=1e-8,
                                       err_msg=name)
