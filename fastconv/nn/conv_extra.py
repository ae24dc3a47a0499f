"""More convolution layers (issue 14): the transposed convolution and the 1-d
convolution, on the current backend (:func:`fastconv.use_backend`)."""

from __future__ import annotations

import numpy as np

from .. import _args
from .._args import as_int, make_rng
from .._backend import ops
from .init import check_init, fmt_pair, init_weight
from .module import Module, Parameter

__all__ = ["ConvTranspose2D", "Conv1D"]


def _check_bias(bias):
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False, got {bias!r}")
    return bool(bias)


class ConvTranspose2D(Module):
    """2-d transposed convolution layer (as ``torch.nn.ConvTranspose2d``), NCHW.

    ``weight``: (in_channels, out_channels/groups, kh, kw), PyTorch's layout; ``bias``:
    (out_channels,) or None. Output size (H-1)*stride - 2*padding + dilation*(kh-1) +
    output_padding + 1; ``output_padding`` < max(stride, dilation). The initialisation's
    fan-in is ``out_channels/groups * kh * kw``, as PyTorch's (the weight's dimension 1).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, *, init="he_normal",
                 dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.in_channels = as_int(in_channels, "in_channels")
        self.out_channels = as_int(out_channels, "out_channels")
        self.kernel_size = _args.pair(kernel_size, "kernel_size")
        self.stride = _args.pair(stride, "stride")
        self.padding = _args.pair(padding, "padding", minimum=0)
        self.output_padding = _args.pair(output_padding, "output_padding", minimum=0)
        self.dilation = _args.pair(dilation, "dilation")
        self.groups = as_int(groups, "groups")
        for name, c in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if c % self.groups:
                raise ValueError(f"{name}={c} must be divisible by groups={self.groups}")
        for o, s, d in zip(self.output_padding, self.stride, self.dilation):
            if o >= max(s, d):
                raise ValueError(f"output_padding {self.output_padding} must be smaller than "
                                 f"either stride {self.stride} or dilation {self.dilation}")
        has_bias = _check_bias(bias)
        self.init = check_init(init)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.zeros((self.in_channels, self.out_channels // self.groups,
                                          kh, kw), self.dtype))
        self.bias = Parameter(np.zeros(self.out_channels, self.dtype)) if has_bias else None
        self._x = None
        self._y_shape = None
        self.reset_parameters(seed)

    def reset_parameters(self, seed=None):
        rng = make_rng(seed)
        kh, kw = self.kernel_size
        fan_in = (self.out_channels // self.groups) * kh * kw
        fan_out = self.in_channels * kh * kw
        self.weight.data[...] = init_weight(rng, self.weight.shape, fan_in, fan_out, self.init,
                                            self.dtype)
        if self.bias is not None:
            self.bias.data[...] = 0
        return self

    def _args(self):
        return dict(stride=self.stride, padding=self.padding, output_padding=self.output_padding,
                    groups=self.groups, dilation=self.dilation)

    def forward(self, x):
        """x (N, in_channels, H, W) -> y (N, out_channels, H_out, W_out); caches x."""
        self._check_input(x, 4, self.in_channels)
        b = None if self.bias is None else self.bias.data
        y = ops().conv_transpose2d(x, self.weight.data, b, **self._args())
        self._x = x
        self._y_shape = y.shape
        return y

    def backward(self, dy):
        """dy (N, out_channels, H_out, W_out) -> dx (N, in_channels, H, W); adds dL/dweight
        and dL/dbias to their ``.grad``. Returns None when no input gradient is needed."""
        if self._x is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        need_w = self.weight.requires_grad
        need_b = self.bias is not None and self.bias.requires_grad
        need_dx = bool(self.input_grad)
        if not (need_w or need_b or need_dx):
            return None
        dx, dw, db = ops().conv_transpose2d_backward(dy, self._x, self.weight.data,
                                                     **self._args(), need_dx=need_dx,
                                                     need_db=need_b)
        if need_w:
            self.weight.grad += dw
        if need_b:
            self.bias.grad += db
        return dx if need_dx else None

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={fmt_pair(self.kernel_size)}, "
             f"stride={fmt_pair(self.stride)}")
        if self.padding != (0, 0):
            s += f", padding={fmt_pair(self.padding)}"
        if self.output_padding != (0, 0):
            s += f", output_padding={fmt_pair(self.output_padding)}"
        if self.dilation != (1, 1):
            s += f", dilation={fmt_pair(self.dilation)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1D(Module):
    """1-d convolution layer (as ``torch.nn.Conv1d``) on (N, C, L) sequences.

    ``weight``: (out_channels, in_channels/groups, kernel_size); ``bias``:
    (out_channels,) or None. ``padding``: an int, ``"valid"`` or ``"same"`` (stride 1).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, *, init="he_normal", dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.in_channels = as_int(in_channels, "in_channels")
        self.out_channels = as_int(out_channels, "out_channels")
        self.kernel_size = _args.single(kernel_size, "kernel_size")
        self.stride = _args.single(stride, "stride")
        self.dilation = _args.single(dilation, "dilation")
        self.groups = as_int(groups, "groups")
        for name, c in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if c % self.groups:
                raise ValueError(f"{name}={c} must be divisible by groups={self.groups}")
        if isinstance(padding, str):
            _args.conv_padding(padding, (1, self.kernel_size), (1, self.dilation), (1, self.stride))
            self.padding = padding
        else:
            self.padding = _args.single(padding, "padding", minimum=0)
        has_bias = _check_bias(bias)
        self.init = check_init(init)
        self.weight = Parameter(np.zeros((self.out_channels, self.in_channels // self.groups,
                                          self.kernel_size), self.dtype))
        self.bias = Parameter(np.zeros(self.out_channels, self.dtype)) if has_bias else None
        self._x = None
        self._y_shape = None
        self.reset_parameters(seed)

    def reset_parameters(self, seed=None):
        rng = make_rng(seed)
        fan_in = (self.in_channels // self.groups) * self.kernel_size
        fan_out = self.out_channels * self.kernel_size
        self.weight.data[...] = init_weight(rng, self.weight.shape, fan_in, fan_out, self.init,
                                            self.dtype)
        if self.bias is not None:
            self.bias.data[...] = 0
        return self

    def _args(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)

    def forward(self, x):
        """x (N, in_channels, L) -> y (N, out_channels, L_out); caches x."""
        self._check_input(x, 3, self.in_channels)
        b = None if self.bias is None else self.bias.data
        y = ops().conv1d(x, self.weight.data, b, **self._args())
        self._x, self._y_shape = x, y.shape
        return y

    def backward(self, dy):
        """dy (N, out_channels, L_out) -> dx (N, in_channels, L); adds dL/dweight and
        dL/dbias to their ``.grad``. Returns None when no input gradient is needed."""
        if self._x is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        need_w = self.weight.requires_grad
        need_b = self.bias is not None and self.bias.requires_grad
        need_dx = bool(self.input_grad)
        if not (need_w or need_b or need_dx):
            return None
        dx, dw, db = ops().conv1d_backward(dy, self._x, self.weight.data, **self._args(),
                                           need_dx=need_dx, need_db=need_b)
        if need_w:
            self.weight.grad += dw
        if need_b:
            self.bias.grad += db
        return dx if need_dx else None

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding not in (0, "valid"):
            s += f", padding={self.padding!r}"
        if self.dilation != 1:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
