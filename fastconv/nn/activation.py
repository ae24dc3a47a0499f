"""Elementwise activations: ReLU (on the current backend), LeakyReLU, Sigmoid, Tanh."""

from __future__ import annotations

import numpy as np

from .._args import as_float
from .._backend import ops
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh"]


class ReLU(Module):
    """max(x, 0). Its backward passes dy where the input was > 0 (zero at exactly 0, as PyTorch)."""

    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self._y = None

    def forward(self, x):
        """y = max(x, 0), any shape; caches y (y > 0 exactly where x > 0)."""
        self._check_input(x)
        y = ops().relu(x)
        # y > 0 exactly where x > 0, so the output is all backward needs (and it
        # is usually held by the next layer anyway).
        self._y = y
        return y

    def backward(self, dy):
        """dx = dy where the input was > 0, else 0."""
        if self._y is None:
            raise self._no_forward()
        self._check_grad(dy, self._y.shape)
        if not self.input_grad:
            return None
        return ops().relu_backward(dy, self._y)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x (as ``torch.nn.LeakyReLU``)."""

    def __init__(self, negative_slope=0.01, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.negative_slope = as_float(negative_slope, "negative_slope")
        self._pos = None

    def forward(self, x):
        """y = x where x > 0, else negative_slope * x; any shape."""
        self._check_input(x)
        pos = x > 0
        self._pos = pos
        return np.where(pos, x, x * self.dtype.type(self.negative_slope))

    def backward(self, dy):
        """dx = dy where the input was > 0, else negative_slope * dy."""
        if self._pos is None:
            raise self._no_forward()
        self._check_grad(dy, self._pos.shape)
        if not self.input_grad:
            return None
        return np.where(self._pos, dy, dy * self.dtype.type(self.negative_slope))

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""

    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self._y = None

    def forward(self, x):
        """y = 1 / (1 + exp(-x)), any shape; caches y."""
        self._check_input(x)
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(self.dtype, copy=False)
        self._y = y
        return y

    def backward(self, dy):
        """dx = dy * y * (1 - y)."""
        if self._y is None:
            raise self._no_forward()
        self._check_grad(dy, self._y.shape)
        if not self.input_grad:
            return None
        y = self._y
        return dy * y * (1 - y)


class Tanh(Module):
    """Hyperbolic tangent."""

    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self._y = None

    def forward(self, x):
        """y = tanh(x), any shape; caches y."""
        self._check_input(x)
        y = np.tanh(x)
        self._y = y
        return y

    def backward(self, dy):
        """dx = dy * (1 - y**2)."""
        if self._y is None:
            raise self._no_forward()
        self._check_grad(dy, self._y.shape)
        if not self.input_grad:
            return None
        y = self._y
        return dy * (1 - y * y)
