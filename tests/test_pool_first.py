"""Sequential's training forward runs a ReLU followed by a MaxPool2D as the pool then
the ReLU (nn/containers.py, _pool_first). The output and every gradient must be the
same bits as the two layers run in their written order."""

import numpy as np
import pytest

import fastconv
from fastconv import nn

POOLS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=2, stride=1),                       # overlapping windows
    dict(kernel_size=2, stride=1, dilation=2),
]


def _awkward_input(rng, shape, dtype):
    """Values with ties, exact zeros, -0.0, whole negative regions and repeated maxima."""
    x = rng.integers(-3, 4, size=shape).astype(dtype) * dtype(0.5)
    x[..., :2, :2] = -1.0                                 # all-negative windows
    x[..., 2:4, 2:4] = 0.0                                # all-zero windows
    flat = x.reshape(-1)
    flat[::7] = -0.0
    return x


def _net(pool, dtype, seed=0):
    return nn.Sequential(
        nn.Conv2D(2, 3, 3, padding=1, dtype=dtype), nn.ReLU(dtype=dtype),
        nn.MaxPool2D(**pool, dtype=dtype), nn.Flatten(dtype=dtype), dtype=dtype, seed=seed)


def _in_order(model, x, dy_fn):
    """Forward and backward child by child, in the written order."""
    kids = list(model)
    h = x
    for k in kids:
        h = k.forward(h)
    d = dy_fn(h)
    out = h
    for k in reversed(kids):
        d = k.backward(d)
    return out, d


def _grads(model):
    return [p.grad.copy() for p in model.parameters()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pool", POOLS, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
def test_pool_first_bitwise(pool, dtype):
    rng = np.random.default_rng(5)
    x = _awkward_input(rng, (3, 2, 9, 9), dtype)
    a, b = _net(pool, dtype), _net(pool, dtype)
    a.train()
    b.train()
    dy = None

    def dy_fn(h):
        nonlocal dy
        dy = rng.standard_normal(h.shape).astype(dtype)
        dy.reshape(-1)[::5] = -0.0
        return dy

    y_ref, dx_ref = _in_order(a, x, dy_fn)
    y = b.forward(x)
    dx = b.backward(dy)
    # the swap did happen: the ReLU saw the pooled map
    assert b[1]._y_shape == b[2]._y_shape
    np.testing.assert_array_equal(y, y_ref)
    assert np.array_equal(np.signbit(y), np.signbit(y_ref))
    np.testing.assert_array_equal(dx, dx_ref)
    assert np.array_equal(np.signbit(dx), np.signbit(dx_ref))
    for g, g_ref in zip(_grads(b), _grads(a)):
        np.testing.assert_array_equal(g, g_ref)


def test_pool_first_nan_propagates_and_sends_no_gradient():
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 0, 1] = 5.0
    x[0, 0, 2:, 2:] = [[1.0, 3.0], [3.0, -2.0]]
    ref = nn.Sequential(nn.ReLU(), nn.MaxPool2D(2))
    net = nn.Sequential(nn.ReLU(), nn.MaxPool2D(2))
    dy = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2)
    y_ref, dx_ref = _in_order(ref, x, lambda h: dy)
    y = net.forward(x)
    dx = net.backward(dy)
    assert np.isnan(y[0, 0, 0, 0]) and np.isnan(y_ref[0, 0, 0, 0])
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    assert dx[0, 0, 2, 3] == 4.0 and dx[0, 0, 3, 2] == 0.0     # the first of the tied 3s


def test_pool_first_on_the_reference_backend():
    rng = np.random.default_rng(2)
    x = _awkward_input(rng, (2, 2, 8, 8), np.float64)
    with fastconv.use_backend("reference"):
        a, b = _net(POOLS[1], np.float64), _net(POOLS[1], np.float64)
        dy = rng.standard_normal((2, 3 * 4 * 4))
        y_ref, dx_ref = _in_order(a, x, lambda h: dy)
        y, dx = b.forward(x), b.backward(dy)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, dx_ref)


def test_leading_pair_without_input_grad_returns_none():
    net = nn.Sequential(nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Linear(4, 2), seed=1)
    net.input_grad = False
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    y = net.forward(x)
    assert net.backward(np.ones_like(y)) is None
    assert np.any(net[3].weight.grad != 0)


def test_eval_forward_then_backward_runs_in_order():
    """After a training forward (pool first) an eval forward runs every child in order,
    and a backward then follows that order too."""
    rng = np.random.default_rng(4)
    x = _awkward_input(rng, (2, 2, 8, 8), np.float32)
    a, b = _net(POOLS[0], np.float32), _net(POOLS[0], np.float32)
    b.train()
    b.forward(x)
    a.eval()
    b.eval()
    dy = rng.standard_normal((2, 3 * 4 * 4)).astype(np.float32)
    y_ref, dx_ref = _in_order(a, x, lambda h: dy)
    y, dx = b.forward(x), b.backward(dy)
    assert b[1]._y_shape == (2, 3, 8, 8)                   # the ReLU ran on the full map
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, dx_ref)


def test_subclasses_are_not_reordered():
    class Shifted(nn.ReLU):
        def forward(self, x):
            return super().forward(x - 1)

    net = nn.Sequential(Shifted(), nn.MaxPool2D(2))
    net.train()
    x = np.random.default_rng(1).standard_normal((1, 1, 4, 4)).astype(np.float32)
    y = net.forward(x)
    np.testing.assert_array_equal(y, np.maximum(x - 1, 0).reshape(1, 1, 2, 2, 2, 2)
                                  .transpose(0, 1, 2, 4, 3, 5).reshape(1, 1, 2, 2, 4).max(-1))
    assert net[0]._y_shape == (1, 1, 4, 4)
