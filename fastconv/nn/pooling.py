"""Max, average and global average pooling layers (the first two on the current
backend, :func:`fastconv.use_backend`)."""

from __future__ import annotations

import numpy as np

from .. import _args
from .._backend import ops, plain_native
from ..functional_prepared import avg_pool2d_prepared, max_pool2d_prepared
from .init import fmt_pair
from .module import Module

__all__ = ["MaxPool2D", "AvgPool2D", "GlobalAvgPool2D"]


def _pool_args(kernel_size, stride, padding, dilation, ceil_mode):
    kernel = _args.pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _args.pair(stride, "stride")
    padding = _args.pair(padding, "padding", minimum=0)
    dilation = _args.pair(dilation, "dilation")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be True or False, got {ceil_mode!r}")
    for p, k, d in zip(padding, kernel, dilation):
        if 2 * p > d * (k - 1) + 1:
            raise ValueError(
                f"padding={padding} must be at most half the (dilated) kernel size {kernel}"
            )
    return kernel, stride, padding, dilation, bool(ceil_mode)


class MaxPool2D(Module):
    """Max pooling (as ``torch.nn.MaxPool2d``); ``stride`` defaults to ``kernel_size``.

    The gradient goes to exactly one element per window (the first maximum).
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                 dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        (self.kernel_size, self.stride, self.padding, self.dilation,
         self.ceil_mode) = _pool_args(kernel_size, stride, padding, dilation, ceil_mode)
        self._idx = None
        self._x = None          # eval mode: the input, for indices backward may ask for
        self._x_shape = None
        self._y_shape = None

    def forward(self, x):
        """x (N, C, H, W) -> y (N, C, P, Q), the maximum of each window. Training caches
        the argmax; eval mode on the native backend computes the values only and keeps x,
        from which a backward (input gradients of an eval model) finds the argmax."""
        self._check_input(x, 4)
        if plain_native():
            y, idx = max_pool2d_prepared(x, self.kernel_size, self.stride, self.padding,
                                         self.dilation, self.ceil_mode, self.training)
        else:
            y, idx = ops().max_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding,
                                      dilation=self.dilation, ceil_mode=self.ceil_mode,
                                      return_indices=True)
        self._keep(_idx=idx, _x=x if idx is None else None, _x_shape=x.shape, _y_shape=y.shape)
        return y

    def backward(self, dy):
        """dy (N, C, P, Q) -> dx (N, C, H, W): each dy goes to its window's first maximum."""
        if self._y_shape is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        if not self.input_grad:
            return None
        if self._idx is None:           # an eval-mode forward: the argmax of the same x
            _, self._idx = max_pool2d_prepared(self._x, self.kernel_size, self.stride,
                                               self.padding, self.dilation, self.ceil_mode)
            self._x = None
        return ops().max_pool2d_backward(dy, self._idx, self._x_shape)

    def extra_repr(self):
        s = f"kernel_size={fmt_pair(self.kernel_size)}, stride={fmt_pair(self.stride)}"
        if self.padding != (0, 0):
            s += f", padding={fmt_pair(self.padding)}"
        if self.dilation != (1, 1):
            s += f", dilation={fmt_pair(self.dilation)}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        return s


class AvgPool2D(Module):
    """Average pooling (as ``torch.nn.AvgPool2d``); ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        (self.kernel_size, self.stride, self.padding, _,
         self.ceil_mode) = _pool_args(kernel_size, stride, padding, 1, ceil_mode)
        if not isinstance(count_include_pad, (bool, np.bool_)):
            raise TypeError(f"count_include_pad must be True or False, got {count_include_pad!r}")
        self.count_include_pad = bool(count_include_pad)
        self._x_shape = None
        self._y_shape = None

    def _pool_kw(self):
        return dict(stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad)

    def forward(self, x):
        """x (N, C, H, W) -> y (N, C, P, Q), the mean of each window (divisor as
        ``count_include_pad``)."""
        self._check_input(x, 4)
        if plain_native():
            y = avg_pool2d_prepared(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                    self.count_include_pad)
        else:
            y = ops().avg_pool2d(x, self.kernel_size, **self._pool_kw())
        self._keep(_x_shape=x.shape, _y_shape=y.shape)
        return y

    def backward(self, dy):
        """dy (N, C, P, Q) -> dx (N, C, H, W): each dy spread evenly over its window."""
        if self._x_shape is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        if not self.input_grad:
            return None
        return ops().avg_pool2d_backward(dy, self._x_shape, self.kernel_size, **self._pool_kw())

    def extra_repr(self):
        s = f"kernel_size={fmt_pair(self.kernel_size)}, stride={fmt_pair(self.stride)}"
        if self.padding != (0, 0):
            s += f", padding={fmt_pair(self.padding)}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        if not self.count_include_pad:
            s += ", count_include_pad=False"
        return s


class GlobalAvgPool2D(Module):
    """Mean over the spatial axes: (N, C, H, W) -> (N, C)."""

    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self._x_shape = None

    def forward(self, x):
        """x (N, C, H, W) -> y (N, C), the mean of each channel plane."""
        self._check_input(x, 4)
        self._x_shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dy):
        """dy (N, C) -> dx (N, C, H, W), dy / (H*W) at every position."""
        if self._x_shape is None:
            raise self._no_forward()
        N, C, H, W = self._x_shape
        self._check_grad(dy, (N, C))
        if not self.input_grad:
            return None
        dx = np.empty(self._x_shape, self.dtype)
        dx[...] = (dy / (H * W))[:, :, None, None]
        return dx
