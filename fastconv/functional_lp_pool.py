"""Power-average (Lp) pooling, PyTorch's ``lp_pool2d``, on the C kernels of
csrc/lppool.c (forward and backward); ``norm_type = inf`` is max pooling.

Definition (PyTorch's, matched exactly): for a window of n elements (n < kh*kw only
for ``ceil_mode``'s clipped last windows), u = kh*kw / n * sum x^p and y = u^(1/p).
Inputs are not made positive: for negative inputs x^p is what ``pow`` gives (NaN for
a non-integer p, negative for an odd integer p), and a negative u gives NaN (for
p != 1), as PyTorch. The one deliberate difference: a window whose power sum is 0
(e.g. all zeros) has gradient 0, where PyTorch's autograd gives NaN (0 * inf).
"""

from __future__ import annotations

import math

import numpy as np

from . import _kernels as K
from . import _runtime
from ._args import (
    check_array,
    check_shape,
    common_dtype,
    contiguous,
    native_dtype,
    torch_keywords,
)
from ._args import lp_pool_params

__all__ = ["lp_pool2d", "lp_pool2d_backward"]


def _geom(p):
    return K.PoolGeom(p.N, p.C, p.H, p.W, p.kernel[0], p.kernel[1], p.stride[0], p.stride[1],
                      0, 0, 1, 1, p.ceil_mode, True)


def _work(p):
    return p.N * p.C * p.P * p.Q * p.kernel[0] * p.kernel[1]


@torch_keywords
def lp_pool2d(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling, as ``torch.nn.functional.lp_pool2d``.

    x: (N, C, H, W); ``norm_type`` p > 0 (``float('inf')``: max pooling); ``stride``
    defaults to ``kernel_size``; no padding. Returns y (N, C, P, Q) =
    (sum over the window of x^p)^(1/p) (see the module docstring for the clipped
    windows of ``ceil_mode`` and negative inputs).
    """
    check_array(x, "x", 4)
    p, g = lp_pool_params(x.shape, norm_type, kernel_size, stride, ceil_mode)
    y = np.empty(g.y_shape, native_dtype(x.dtype))
    if g.N == 0:
        return y
    x = contiguous(x)
    nt = _runtime.kernel_threads(_work(g))
    if math.isinf(p):
        idx = np.empty(g.y_shape, np.int64)
        K.maxpool2d_fwd(_geom(g), x.reshape(-1), y.reshape(-1), idx.reshape(-1), nt)
    else:
        K.lppool2d_fwd(_geom(g), p, x.reshape(-1), y.reshape(-1), nt)
    return y


@torch_keywords
def lp_pool2d_backward(dy, x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Gradient of :func:`lp_pool2d` with respect to x: dx (N, C, H, W). A window whose
    power sum is 0 contributes 0 (never NaN); with p = inf each dy goes to its window's
    first maximum."""
    check_array(dy, "dy", 4)
    check_array(x, "x", 4)
    dtype = common_dtype(x=x, dy=dy)
    p, g = lp_pool_params(x.shape, norm_type, kernel_size, stride, ceil_mode)
    check_shape(dy, g.y_shape, "dy")
    dx = np.empty(x.shape, dtype)
    if g.N == 0:
        return dx
    x, dy = contiguous(x), contiguous(dy)
    nt = _runtime.kernel_threads(_work(g))
    geom = _geom(g)
    if math.isinf(p):
        y = np.empty(g.y_shape, dtype)
        idx = np.empty(g.y_shape, np.int64)
        K.maxpool2d_fwd(geom, x.reshape(-1), y.reshape(-1), idx.reshape(-1), nt)
        K.maxpool2d_bwd(geom, dy.reshape(-1), idx.reshape(-1), dx.reshape(-1), nt)
    else:
        K.lppool2d_bwd(geom, p, x.reshape(-1), dy.reshape(-1), dx.reshape(-1), nt)
    return dx
