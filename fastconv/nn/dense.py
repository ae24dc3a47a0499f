"""Linear (on the current backend), Flatten and Dropout."""

from __future__ import annotations

import numpy as np

from .._args import as_float, as_int, make_rng
from .._backend import ops, plain_native
from ..functional_prepared import gemv_linear, gemv_ok
from .init import check_init, init_weight
from .module import Module, Parameter

__all__ = ["Linear", "Flatten", "Dropout"]


class Linear(Module):
    """Fully connected layer: y = x @ weight.T + bias; x (N, in_features) -> (N, out_features)."""

    def __init__(self, in_features, out_features, bias=True, *, init="he_normal",
                 dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.in_features = as_int(in_features, "in_features")
        self.out_features = as_int(out_features, "out_features")
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        self.init = check_init(init)
        self.weight = Parameter(np.zeros((self.out_features, self.in_features), self.dtype))
        self.bias = Parameter(np.zeros(self.out_features, self.dtype)) if bias else None
        self._x = None
        self.reset_parameters(seed)

    def reset_parameters(self, seed=None):
        rng = make_rng(seed)
        self.weight.data[...] = init_weight(rng, self.weight.shape, self.in_features,
                                            self.out_features, self.init, self.dtype)
        if self.bias is not None:
            self.bias.data[...] = 0
        return self

    def effective_weight(self):
        """The weight this layer multiplies by (``weight.data`` here); see
        :meth:`Conv2D.effective_weight`."""
        return self.weight.data

    def forward(self, x):
        """x (N, in_features) -> y (N, out_features) = x @ weight.T + bias; caches x."""
        self._check_input(x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            msg = f"{self._short()} expects a 2-d input (N, {self.in_features}), got shape {x.shape}"
            if x.ndim > 2:
                msg += "; put a Flatten() layer before it"
            raise ValueError(msg)
        b = None if self.bias is None else self.bias.data
        if not self.training and plain_native() and gemv_ok(x.shape[0]):
            # inference on a few rows: one GEMV, as the compiled plan (not bitwise the
            # training path's GEMM: another summation order)
            y = gemv_linear(x, self.weight.data, b)
        else:
            y = ops().linear(x, self.weight.data, b)
        self._keep(_x=x)
        return y

    _fresh_forward = forward

    def backward(self, dy):
        """dy (N, out_features) -> dx (N, in_features) = dy @ weight; adds dy.T @ x to
        ``weight.grad`` and dy summed over N to ``bias.grad``."""
        x = self._x
        if x is None:
            raise self._no_forward()
        self._check_grad(dy, (x.shape[0], self.out_features))
        need_db = self.bias is not None and self.bias.requires_grad
        dx, dw, db = ops().linear_backward(dy, x, self.weight.data, need_dx=self.input_grad,
                                           need_db=need_db)
        if self.weight.requires_grad:
            self.weight.grad += dw
        if need_db:
            self.bias.grad += db
        return dx

    def extra_repr(self):
        s = f"in_features={self.in_features}, out_features={self.out_features}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1*d2*...)."""

    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self._x_shape = None

    def forward(self, x):
        """x (N, d1, d2, ...) -> (N, d1*d2*...), a view when x is contiguous."""
        self._check_input(x)
        if x.ndim < 2:
            raise ValueError(f"{self._short()} expects an input with a batch axis (ndim >= 2), got shape {x.shape}")
        self._keep(_x_shape=x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        """dy (N, d1*d2*...) -> dx reshaped to the input's shape."""
        if self._x_shape is None:
            raise self._no_forward()
        n = self._x_shape[0]
        self._check_grad(dy, (n, int(np.prod(self._x_shape[1:], dtype=np.int64))))
        if not self.input_grad:
            return None
        return dy.reshape(self._x_shape)


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale
    the rest by 1/(1-p); in eval mode, the identity. The masks come from the layer's own
    generator, ``numpy.random.default_rng(seed)``.
    """

    def __init__(self, p=0.5, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.p = as_float(p, "p", 0.0, 1.0)
        self._rng = make_rng(seed)
        self._mask = None
        self._shape = None

    def reset_parameters(self, seed=None):
        self._rng = make_rng(seed)
        return self

    def forward(self, x):
        """Training: x times a fresh mask (0 with probability p, else 1/(1-p)); eval: x."""
        self._check_input(x)
        self._shape = x.shape
        if not self.training or self.p == 0.0:
            self._mask = False  # identity
            return x
        if self.p == 1.0:
            mask = np.zeros(x.shape, self.dtype)
        else:
            keep = self._rng.random(x.shape) >= self.p
            mask = keep.astype(self.dtype) * self.dtype.type(1.0 / (1.0 - self.p))
        self._mask = mask
        return x * mask

    def backward(self, dy):
        """dx = dy times the forward pass's mask (dy itself in eval mode)."""
        if self._shape is None:
            raise self._no_forward()
        self._check_grad(dy, self._shape)
        if not self.input_grad:
            return None
        if self._mask is False:
            return dy
        return dy * self._mask

    def extra_repr(self):
        return f"p={self.p}"
