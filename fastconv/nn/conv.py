"""The convolution layer, on the current backend (:func:`fastconv.use_backend`)."""

from __future__ import annotations

import numpy as np

from .. import _args
from .._args import as_int, make_rng
from .._backend import ops, plain_native
from ..functional_prepared import conv2d_prepared
from .init import check_init, fmt_pair, init_weight
from .module import Module, Parameter

__all__ = ["Conv2D"]


class Conv2D(Module):
    """2-d convolution layer (cross-correlation, as ``torch.nn.Conv2d``), NCHW.

    ``weight``: (out_channels, in_channels/groups, kh, kw); ``bias``: (out_channels,)
    or None. ``padding``: int, pair, ``"valid"`` or ``"same"`` (stride 1 only).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, *, init="he_normal", dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.in_channels = as_int(in_channels, "in_channels")
        self.out_channels = as_int(out_channels, "out_channels")
        self.kernel_size = _args.pair(kernel_size, "kernel_size")
        self.stride = _args.pair(stride, "stride")
        self.dilation = _args.pair(dilation, "dilation")
        self.groups = as_int(groups, "groups")
        if self.in_channels % self.groups:
            raise ValueError(f"in_channels={self.in_channels} must be divisible by groups={self.groups}")
        if self.out_channels % self.groups:
            raise ValueError(f"out_channels={self.out_channels} must be divisible by groups={self.groups}")
        # validates padding (int, pair, "valid", "same" with stride 1)
        _args.conv_padding(padding, self.kernel_size, self.dilation, self.stride)
        self.padding = padding if isinstance(padding, str) else _args.pair(padding, "padding", minimum=0)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        self.init = check_init(init)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.zeros((self.out_channels, self.in_channels // self.groups, kh, kw),
                                         self.dtype))
        self.bias = Parameter(np.zeros(self.out_channels, self.dtype)) if bias else None
        self._x = None
        self._y_shape = None
        self.reset_parameters(seed)

    def reset_parameters(self, seed=None):
        rng = make_rng(seed)
        kh, kw = self.kernel_size
        fan_in = (self.in_channels // self.groups) * kh * kw
        fan_out = self.out_channels * kh * kw
        self.weight.data[...] = init_weight(rng, self.weight.shape, fan_in, fan_out, self.init, self.dtype)
        if self.bias is not None:
            self.bias.data[...] = 0
        return self

    def _conv_args(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def effective_weight(self):
        """The weight this layer convolves with (``weight.data`` here). A subclass whose
        forward is this convolution with a transformed weight (e.g. binary weights)
        overrides this instead of ``forward``'s arithmetic, and ``fastconv.compile``
        lowers it as a plain convolution with this weight."""
        return self.weight.data

    def forward(self, x):
        """x (N, in_channels, H, W) -> y (N, out_channels, P, Q); caches x for backward."""
        self._check_input(x, 4, self.in_channels)
        w = self.weight.data
        b = None if self.bias is None else self.bias.data
        if plain_native():
            y = conv2d_prepared(x, w, b, self.stride, self.padding, self.dilation, self.groups)
        else:
            y = ops().conv2d(x, w, b, **self._conv_args())
        self._keep(_x=x, _y_shape=y.shape)
        return y

    _fresh_forward = forward

    def backward(self, dy):
        """dy (N, out_channels, P, Q) -> dx (N, in_channels, H, W); adds dL/dweight and
        dL/dbias to their ``.grad``. Returns None when no input gradient is needed."""
        x = self._x
        if x is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        need_w = self.weight.requires_grad
        need_b = self.bias is not None and self.bias.requires_grad
        need_dx = bool(self.input_grad)
        if not (need_w or need_b or need_dx):
            return None
        dx, dw, db = ops().conv2d_backward(dy, x, self.weight.data, **self._conv_args(),
                                           need_dx=need_dx, need_db=need_b)
        if need_w:
            self.weight.grad += dw
        if need_b:
            self.bias.grad += db
        return dx if need_dx else None

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={fmt_pair(self.kernel_size)}, "
             f"stride={fmt_pair(self.stride)}")
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={fmt_pair(self.padding)}"
        if self.dilation != (1, 1):
            s += f", dilation={fmt_pair(self.dilation)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
