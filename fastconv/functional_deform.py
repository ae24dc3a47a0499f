"""Deformable convolution (torchvision's ``deform_conv2d``; DCNv2 with a mask) on the C
kernels of csrc/deform.c: deformable im2col + fastconv's GEMM forward; backward with
gradients for the input, the offsets, the mask, the weights and the bias (dcols
scattered per channel plane, so deterministic for any thread count).

Semantics (torchvision's): output pixel (p, q), tap (r, s), channel c of offset group
og samples x[n, c] bilinearly at (p*sh - ph + r*dh + dy, q*sw - pw + s*dw + dx), with
(dy, dx) = offset[n, og*2*kh*kw + 2*(r*kw + s) + (0, 1), p, q]; samples outside the
image count 0 (a sample at h <= -1 or h >= H, likewise w, is 0); with a mask the sample
is multiplied by mask[n, og*kh*kw + r*kw + s, p, q]. groups = C / w.shape[1].
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K
from . import _runtime
from ._args import deform_inputs
from ._args import contiguous, torch_keywords

__all__ = ["deform_conv2d", "deform_conv2d_backward"]


def _geom(p):
    return K.DeformGeom(p.N, p.C, p.H, p.W, p.K, p.R, p.S, p.groups, p.offset_groups,
                        p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0],
                        p.dilation[1])


def _flat(a, dtype):
    return contiguous(a).reshape(-1) if a is not None else np.empty(0, dtype)


def _work(p):
    return p.N * p.K * (p.C // p.groups) * p.R * p.S * p.P * p.Q


@torch_keywords
def deform_conv2d(x, offset, w, b=None, stride=1, padding=0, dilation=1, mask=None):
    """Deformable 2-d convolution, as ``torchvision.ops.deform_conv2d``.

    x: (N, C, H, W); offset: (N, 2*OG*kh*kw, P, Q); w: (K, C/groups, kh, kw); b: (K,) or
    None; mask: None or (N, OG*kh*kw, P, Q) (modulated deformable convolution, DCNv2).
    Returns y (N, K, P, Q), P and Q as conv2d's.
    """
    p, dtype = deform_inputs(x, offset, w, b, stride, padding, dilation, mask)
    y = np.empty((p.N, p.K, p.P, p.Q), dtype)
    if p.N == 0:
        return y
    K.deform_conv2d_fwd(_geom(p), _flat(x, dtype), _flat(offset, dtype), _flat(mask, dtype),
                        _flat(w, dtype), _flat(b, dtype), y.reshape(-1),
                        _runtime.kernel_threads(_work(p)))
    return y


@torch_keywords
def deform_conv2d_backward(dy, x, offset, w, stride=1, padding=0, dilation=1, mask=None,
                           need_dx=True, need_db=True):
    """Gradients of :func:`deform_conv2d`: (dx, doffset, dmask, dw, db); dx None without
    ``need_dx``, dmask None without a mask, db None without ``need_db``."""
    p, dtype = deform_inputs(x, offset, w, None, stride, padding, dilation, mask, dy=dy)
    dx = np.zeros(x.shape, dtype) if need_dx else None
    doffset = np.zeros(offset.shape, dtype)
    dmask = np.zeros(mask.shape, dtype) if mask is not None else None
    dw = np.zeros(w.shape, dtype)
    db = np.zeros(p.K, dtype) if need_db else None
    if p.N == 0:
        return dx, doffset, dmask, dw, db
    empty = np.empty(0, dtype)
    K.deform_conv2d_bwd(_geom(p), _flat(x, dtype), _flat(offset, dtype), _flat(mask, dtype),
                        _flat(w, dtype), _flat(dy, dtype),
                        dx.reshape(-1) if dx is not None else empty, doffset.reshape(-1),
                        dmask.reshape(-1) if dmask is not None else empty, dw.reshape(-1),
                        db if db is not None else empty, _runtime.kernel_threads(_work(p)))
    return dx, doffset, dmask, dw, db
