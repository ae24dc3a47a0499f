"""The deformable convolution layer (as ``torchvision.ops.DeformConv2d``), on the current
backend (:func:`fastconv.use_backend`)."""

from __future__ import annotations

import numpy as np

from .. import _args
from .._args import as_int, make_rng
from .._backend import ops
from .init import check_init, fmt_pair, init_weight
from .module import Module, Parameter

__all__ = ["DeformConv2D"]


class DeformConv2D(Module):
    """Deformable 2-d convolution: ``forward(x, offset, mask=None)`` as torchvision's
    ``DeformConv2d`` (offset (N, 2*OG*kh*kw, P, Q), mask (N, OG*kh*kw, P, Q) for DCNv2;
    OG offset groups from offset's shape). ``backward(dy)`` returns dL/dx, accumulates
    dL/dweight and dL/dbias, and leaves dL/doffset and dL/dmask in ``offset_grad`` and
    ``mask_grad`` (None without a mask), for the layer that predicted them.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, *, init="he_normal", dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.in_channels = as_int(in_channels, "in_channels")
        self.out_channels = as_int(out_channels, "out_channels")
        self.kernel_size = _args.pair(kernel_size, "kernel_size")
        self.stride = _args.pair(stride, "stride")
        self.padding = _args.pair(padding, "padding", minimum=0)
        self.dilation = _args.pair(dilation, "dilation")
        self.groups = as_int(groups, "groups")
        for name, c in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if c % self.groups:
                raise ValueError(f"{name}={c} must be divisible by groups={self.groups}")
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        self.init = check_init(init)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.zeros((self.out_channels, self.in_channels // self.groups,
                                          kh, kw), self.dtype))
        self.bias = Parameter(np.zeros(self.out_channels, self.dtype)) if bias else None
        self._cache = None
        self.offset_grad = None
        self.mask_grad = None
        self.reset_parameters(seed)

    def reset_parameters(self, seed=None):
        rng = make_rng(seed)
        kh, kw = self.kernel_size
        fan_in = (self.in_channels // self.groups) * kh * kw
        self.weight.data[...] = init_weight(rng, self.weight.shape, fan_in,
                                            self.out_channels * kh * kw, self.init, self.dtype)
        if self.bias is not None:
            self.bias.data[...] = 0
        return self

    def _kw(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation)

    def forward(self, x, offset, mask=None):
        """x (N, in_channels, H, W), offset, mask -> y (N, out_channels, P, Q)."""
        self._check_input(x, 4, self.in_channels)
        self._check_input(offset, 4, what="offset")
        if mask is not None:
            self._check_input(mask, 4, what="mask")
        b = None if self.bias is None else self.bias.data
        y = ops().deform_conv2d(x, offset, self.weight.data, b, **self._kw(), mask=mask)
        self._cache = (x, offset, mask, y.shape)
        return y

    def backward(self, dy):
        """dy (N, out_channels, P, Q) -> dx; sets ``offset_grad`` / ``mask_grad``."""
        if self._cache is None:
            raise self._no_forward()
        x, offset, mask, y_shape = self._cache
        self._check_grad(dy, y_shape)
        need_b = self.bias is not None and self.bias.requires_grad
        dx, self.offset_grad, self.mask_grad, dw, db = ops().deform_conv2d_backward(
            dy, x, offset, self.weight.data, **self._kw(), mask=mask,
            need_dx=bool(self.input_grad), need_db=need_b)
        if self.weight.requires_grad:
            self.weight.grad += dw
        if need_b:
            self.bias.grad += db
        return dx if self.input_grad else None

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={fmt_pair(self.kernel_size)}, "
             f"stride={fmt_pair(self.stride)}, padding={fmt_pair(self.padding)}")
        if self.dilation != (1, 1):
            s += f", dilation={fmt_pair(self.dilation)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
