"""More pooling layers (issue 14): adaptive average / max pooling and power-average
(Lp) pooling, on the current backend (:func:`fastconv.use_backend`)."""

from __future__ import annotations

import numpy as np

from .. import _args
from .._backend import ops
from .module import Module

__all__ = ["AdaptiveAvgPool2D", "AdaptiveMaxPool2D", "LPPool2D"]


def _output_size(output_size):
    """Validate an adaptive output size (int, or pair of ints / None) for a layer."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"output_size must be an int or a pair, got {output_size!r}")
        return tuple(None if v is None else _args.as_int(v, "output_size") for v in output_size)
    v = _args.as_int(output_size, "output_size")
    return (v, v)


def _fmt_size(s):
    return f"output_size=({s[0]}, {s[1]})"


class AdaptiveAvgPool2D(Module):
    """Adaptive average pooling to a fixed ``output_size`` (as ``torch.nn.AdaptiveAvgPool2d``):
    an int, or a pair whose entries may be None (that input size is kept)."""

    def __init__(self, output_size, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.output_size = _output_size(output_size)
        self._x_shape = None
        self._y_shape = None

    def forward(self, x):
        """x (N, C, H, W) -> y (N, C, oh, ow), the mean of each adaptive window."""
        self._check_input(x, 4)
        y = ops().adaptive_avg_pool2d(x, self.output_size)
        self._x_shape, self._y_shape = x.shape, y.shape
        return y

    def backward(self, dy):
        """dy (N, C, oh, ow) -> dx (N, C, H, W): each dy spread evenly over its window."""
        if self._x_shape is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        if not self.input_grad:
            return None
        return ops().adaptive_avg_pool2d_backward(dy, self._x_shape)

    def extra_repr(self):
        return _fmt_size(self.output_size)


class AdaptiveMaxPool2D(Module):
    """Adaptive max pooling to a fixed ``output_size`` (as ``torch.nn.AdaptiveMaxPool2d``);
    the gradient goes to the first maximum of each window."""

    def __init__(self, output_size, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.output_size = _output_size(output_size)
        self._idx = None
        self._x_shape = None

    def forward(self, x):
        """x (N, C, H, W) -> y (N, C, oh, ow), the maximum of each adaptive window."""
        self._check_input(x, 4)
        y, self._idx = ops().adaptive_max_pool2d(x, self.output_size, return_indices=True)
        self._x_shape = x.shape
        return y

    def backward(self, dy):
        """dy (N, C, oh, ow) -> dx (N, C, H, W): each dy goes to its window's maximum."""
        if self._idx is None:
            raise self._no_forward()
        self._check_grad(dy, self._idx.shape)
        if not self.input_grad:
            return None
        return ops().adaptive_max_pool2d_backward(dy, self._idx, self._x_shape)

    def extra_repr(self):
        return _fmt_size(self.output_size)



class LPPool2D(Module):
    """Power-average pooling (as ``torch.nn.LPPool2d``): y = (sum over the window of
    x^p)^(1/p); ``norm_type`` p > 0, ``inf`` for max pooling; ``stride`` defaults to
    ``kernel_size``; no padding. An all-zero window passes gradient 0 (PyTorch: NaN)."""

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False, *,
                 dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.norm_type, _ = _args.lp_pool_params((1, 1, 1, 1), norm_type, 1)
        self.kernel_size = _args.pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _args.pair(stride, "stride")
        if not isinstance(ceil_mode, (bool, np.bool_)):
            raise TypeError(f"ceil_mode must be True or False, got {ceil_mode!r}")
        self.ceil_mode = bool(ceil_mode)
        self._x = None
        self._y_shape = None

    def _kw(self):
        return dict(stride=self.stride, ceil_mode=self.ceil_mode)

    def forward(self, x):
        """x (N, C, H, W) -> y (N, C, P, Q); caches x for backward."""
        self._check_input(x, 4)
        y = ops().lp_pool2d(x, self.norm_type, self.kernel_size, **self._kw())
        self._x, self._y_shape = x, y.shape
        return y

    def backward(self, dy):
        """dy (N, C, P, Q) -> dx (N, C, H, W)."""
        if self._x is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        if not self.input_grad:
            return None
        return ops().lp_pool2d_backward(dy, self._x, self.norm_type, self.kernel_size,
                                        **self._kw())

    def extra_repr(self):
        k, s = self.kernel_size, self.stride
        out = f"norm_type={self.norm_type:g}, kernel_size=({k[0]}, {k[1]}), stride=({s[0]}, {s[1]})"
        return out + (", ceil_mode=True" if self.ceil_mode else "")
