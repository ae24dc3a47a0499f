"""Central-difference helpers shared by the op and layer tests (float64, no torch)."""

from __future__ import annotations

import numpy as np


def numeric_grad(f, a, eps=1e-6, coords=None):
    """d sum(f() * 1) / d a at ``coords`` (all of them by default) by central differences;
    ``f`` reads ``a`` (modified in place and restored)."""
    g = np.zeros_like(a)
    idx = coords if coords is not None else list(np.ndindex(a.shape))
    for i in idx:
        old = a[i]
        a[i] = old + eps
        fp = f()
        a[i] = old - eps
        fm = f()
        a[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def sample(shape, rng, limit=30):
    size = int(np.prod(shape))
    flat = np.arange(size) if size <= limit else rng.choice(size, limit, replace=False)
    return [np.unravel_index(i, shape) for i in flat]


def check_grads(loss, analytic, arrays, rng, rtol=1e-6, atol=1e-8, limit=30):
    """``loss()``: a scalar from the arrays; ``analytic``: their gradients (same order)."""
    for a, g in zip(arrays, analytic):
        coords = sample(a.shape, rng, limit)
        num = numeric_grad(loss, a, coords=coords)
        got = np.array([g[c] for c in coords])
        want = np.array([num[c] for c in coords])
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def check_layer(layer, x, rng, rtol=1e-6, atol=1e-8, limit=25):
    """Finite-difference check of a layer's backward (input and every parameter)."""
    layer.input_grad = True
    y = layer.forward(x)
    r = rng.standard_normal(y.shape)
    layer.zero_grad()
    layer.forward(x)
    dx = layer.backward(r)

    def loss():
        return float(np.sum(layer.forward(x) * r))

    params = [p for p in layer.parameters()]
    check_grads(loss, [dx] + [p.grad.copy() for p in params], [x] + [p.data for p in params],
                rng, rtol, atol, limit)
