"""Elementwise activations, each on any shape, caching what its backward needs:
ReLU (on the current backend, :func:`fastconv.use_backend`), LeakyReLU, Sigmoid,
Tanh, Clip (ReLU6), HardSigmoid, HardSwish, Softmax, LogSoftmax and Identity.

All but ReLU are plain NumPy, the same code on both backends. Where a function
has a kink (ReLU at 0, the ends of a clip) the gradient there is zero, as in
PyTorch.
"""

from __future__ import annotations

import numpy as np

from .._args import as_float, as_int
from .._backend import ops
from ..functional_prepared import clip_inplace, relu_inplace
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Clip", "ReLU6", "HardSigmoid",
           "HardSwish", "Softmax", "LogSoftmax"]


class _Elementwise(Module):
    """A one-input layer whose backward needs only the cached arrays."""

    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self._cache = None

    def backward(self, dy):
        """dx from dy and what forward cached (same shape as the input)."""
        if self._cache is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        if not self.input_grad:
            return None
        return np.asarray(self._grad(dy), dtype=self.dtype)

    def _store(self, y, *cache):
        self._keep(_cache=cache, _y_shape=y.shape)
        return y


class ReLU(_Elementwise):
    """max(x, 0). Its backward passes dy where the input was > 0 (zero at exactly 0, as PyTorch)."""

    def forward(self, x):
        """y = max(x, 0), any shape; caches y (y > 0 exactly where x > 0)."""
        self._check_input(x)
        y = ops().relu(x)
        # the output is all backward needs (and the next layer usually holds it anyway)
        return self._store(y, y)

    def _forward_inplace(self, x):
        """forward(x) written over x (see :func:`.module.inplace_forward`), by the native
        in-place kernel with the forward kernel's bits (-0.0 -> +0.0, NaN kept)."""
        self._check_input(x)
        relu_inplace(x)
        return self._store(x, x)

    _inplace_of = forward

    def _grad(self, dy):
        return ops().relu_backward(dy, self._cache[0])


class LeakyReLU(_Elementwise):
    """x where x > 0, else negative_slope * x (as ``torch.nn.LeakyReLU``)."""

    def __init__(self, negative_slope=0.01, *, dtype=np.float32, seed=None):
        super().__init__(dtype=dtype, seed=seed)
        self.negative_slope = as_float(negative_slope, "negative_slope")

    def forward(self, x):
        """y = x where x > 0, else negative_slope * x; any shape."""
        self._check_input(x)
        pos = x > 0
        return self._store(np.where(pos, x, x * self.dtype.type(self.negative_slope)), pos)

    def _grad(self, dy):
        return np.where(self._cache[0], dy, dy * self.dtype.type(self.negative_slope))

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""

    def forward(self, x):
        """y = 1 / (1 + exp(-x)), any shape; caches y."""
        self._check_input(x)
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(self.dtype, copy=False)
        return self._store(y, y)

    def _grad(self, dy):
        y = self._cache[0]
        return dy * y * (1 - y)


class Tanh(_Elementwise):
    """Hyperbolic tangent."""

    def forward(self, x):
        """y = tanh(x), any shape; caches y."""
        self._check_input(x)
        y = np.tanh(x)
        return self._store(y, y)

    def _grad(self, dy):
        y = self._cache[0]
        return dy * (1 - y * y)


class Identity(_Elementwise):
    """``y = x`` (``torch.nn.Identity``): a placeholder, also what ONNX Identity and an
    inference-time Dropout become."""

    def forward(self, x):
        """y = x (the same array)."""
        self._check_input(x)
        return self._store(x, True)

    def _grad(self, dy):
        return dy


class Clip(_Elementwise):
    """``y = min(max(x, min), max)`` (``torch.clamp``; ``torch.nn.Hardtanh`` with both bounds).

    ``min`` / ``max``: a bound or None (no bound). The gradient passes where
    ``min < x < max``.
    """

    def __init__(self, min=None, max=None, *, dtype=np.float32, seed=None):  # noqa: A002
        super().__init__(dtype=dtype, seed=seed)
        self.min = None if min is None else as_float(min, "min")
        self.max = None if max is None else as_float(max, "max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min={self.min} must not exceed max={self.max}")

    def forward(self, x):
        """y = x limited to [min, max] elementwise (NaN propagates); caches y, from
        which backward finds where the gradient passes (one pass, no mask made when no
        gradient is asked for): min < y < max exactly where min < x < max."""
        self._check_input(x)
        y = self._clip(x, None)
        return self._store(y, y)

    def _clip(self, x, out):
        t = self.dtype.type
        if self.min is not None and self.max is not None:
            return np.clip(x, t(self.min), t(self.max), out=out)   # one pass; NaN propagates
        if self.min is not None:
            return np.maximum(x, t(self.min), out=out)
        if self.max is not None:
            return np.minimum(x, t(self.max), out=out)
        return x.copy() if out is None else x

    def _forward_inplace(self, x):
        """forward(x) written over x (see :func:`.module.inplace_forward`; the same bits):
        with both bounds one native pass (ReLU6), else NumPy."""
        self._check_input(x)
        if self.min is not None and self.max is not None:
            y = clip_inplace(x, self.min, self.max)
        else:
            y = self._clip(x, x)
        return self._store(y, y)

    _inplace_of = forward

    def _grad(self, dy):
        y = self._cache[0]
        keep = np.ones(y.shape, bool)
        if self.min is not None:
            keep &= y > self.dtype.type(self.min)
        if self.max is not None:
            keep &= y < self.dtype.type(self.max)
        return np.where(keep, dy, 0)

    def extra_repr(self):
        return f"min={self.min}, max={self.max}"


class ReLU6(Clip):
    """``min(max(x, 0), 6)`` (``torch.nn.ReLU6``), as in MobileNet."""

    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(0.0, 6.0, dtype=dtype, seed=seed)

    def extra_repr(self):
        return ""


class HardSigmoid(_Elementwise):
    """``y = clip(alpha * x + beta, 0, 1)``. The defaults (``alpha=1/6``, ``beta=0.5``)
    are ``torch.nn.Hardsigmoid``'s, ``relu6(x + 3) / 6``; ONNX's default alpha is 0.2.
    """

    def __init__(self, alpha=1.0 / 6.0, beta=0.5, *, dtype=np.float32, seed=None):
        super().__init__(dtype=dtype, seed=seed)
        self.alpha = as_float(alpha, "alpha")
        self.beta = as_float(beta, "beta")

    def forward(self, x):
        """y = clip(alpha * x + beta, 0, 1)."""
        self._check_input(x)
        t = self.dtype.type
        z = x * t(self.alpha) + t(self.beta)
        inside = (z > 0) & (z < 1)
        return self._store(np.clip(z, t(0), t(1)), inside)

    def _grad(self, dy):
        return np.where(self._cache[0], dy * self.dtype.type(self.alpha), 0)

    def extra_repr(self):
        return f"alpha={self.alpha:.6g}, beta={self.beta:.6g}"


class HardSwish(_Elementwise):
    """``y = x * relu6(x + 3) / 6`` (``torch.nn.Hardswish``), as in MobileNetV3."""

    def forward(self, x):
        """y = x * relu6(x + 3) / 6."""
        self._check_input(x)
        t = self.dtype.type
        y = x * (np.clip(x + t(3), t(0), t(6)) / t(6))
        return self._store(y, x)

    def _grad(self, dy):
        x = self._cache[0]
        t = self.dtype.type
        slope = np.where(x <= t(-3), t(0), np.where(x >= t(3), t(1), x / t(3) + t(0.5)))
        return dy * slope


def _check_axis(layer, x):
    if not -x.ndim <= layer.axis < x.ndim:
        raise ValueError(f"{layer._short()}: axis {layer.axis} is out of range for input shape {x.shape}")
    return layer.axis % x.ndim


class Softmax(_Elementwise):
    """``exp(x) / sum(exp(x))`` along ``axis`` (``torch.nn.Softmax(dim)``; default the last)."""

    def __init__(self, axis=-1, *, dtype=np.float32, seed=None):
        super().__init__(dtype=dtype, seed=seed)
        self.axis = as_int(axis, "axis", minimum=None)

    def forward(self, x):
        """Softmax over ``axis``, computed with the maximum subtracted (no overflow)."""
        self._check_input(x)
        ax = _check_axis(self, x)
        e = np.exp(x - x.max(axis=ax, keepdims=True))
        y = e / e.sum(axis=ax, keepdims=True)
        return self._store(y, y, ax)

    def _grad(self, dy):
        y, ax = self._cache
        return y * (dy - np.sum(dy * y, axis=ax, keepdims=True))

    def extra_repr(self):
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    """``log(softmax(x))`` along ``axis``, computed stably (``torch.nn.LogSoftmax(dim)``)."""

    def forward(self, x):
        """log(softmax(x)) over ``axis``, computed as x - max - log(sum(exp(x - max)))."""
        self._check_input(x)
        ax = _check_axis(self, x)
        z = x - x.max(axis=ax, keepdims=True)
        y = z - np.log(np.exp(z).sum(axis=ax, keepdims=True))
        return self._store(y, y, ax)

    def _grad(self, dy):
        y, ax = self._cache
        return dy - np.exp(y) * np.sum(dy, axis=ax, keepdims=True)
