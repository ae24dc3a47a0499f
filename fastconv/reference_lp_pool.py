"""Plain NumPy reference of Lp pooling (the oracle of :mod:`fastconv.functional_lp_pool`):
u = kh*kw / n * sum over the window of x^p, y = u^(1/p), n the window's element count;
p = inf is max pooling. Windows are taken with one loop over the kernel offsets, on x^p
zero-padded at the end for ``ceil_mode``'s clipped windows."""

from __future__ import annotations

import math

import numpy as np

from ._args import (
    check_array,
    check_shape,
    common_dtype,
    native_dtype,
    torch_keywords,
)
from ._args import lp_pool_params

__all__ = ["lp_pool2d", "lp_pool2d_backward"]


def _windows(g):
    """Per kernel offset (i, j): the (P, Q) grid of input coordinates and whether real."""
    (kh, kw), (sh, sw) = g.kernel, g.stride
    rows = np.arange(g.P)[:, None] * sh + np.arange(kh)[None, :]      # (P, kh)
    cols = np.arange(g.Q)[:, None] * sw + np.arange(kw)[None, :]      # (Q, kw)
    for i in range(kh):
        for j in range(kw):
            h, w = rows[:, i][:, None], cols[:, j][None, :]
            yield h, w, (h < g.H) & (w < g.W)


def _power_sums(xp, g):
    """u (N, C, P, Q) and the window sizes n (P, Q)."""
    s = np.zeros(g.y_shape, xp.dtype)
    n = np.zeros((g.P, g.Q), np.int64)
    for h, w, real in _windows(g):
        s += np.where(real, xp[:, :, np.minimum(h, g.H - 1), np.minimum(w, g.W - 1)], 0)
        n += real
    kk = g.kernel[0] * g.kernel[1]
    return s / n * kk, n


def _max(x, g):
    best = np.full(g.y_shape, -np.inf, x.dtype)
    arg = np.zeros(g.y_shape, np.int64)
    seen = np.zeros(g.y_shape, bool)
    for h, w, real in _windows(g):
        v = x[:, :, np.minimum(h, g.H - 1), np.minimum(w, g.W - 1)]
        better = (v > best) | (np.isnan(v) & ~np.isnan(best))
        take = real & (~seen | better)
        best = np.where(take, v, best)
        arg = np.where(take, h * g.W + w, arg)
        seen |= real
    return best, arg


@torch_keywords
def lp_pool2d(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling (NumPy), as ``torch.nn.functional.lp_pool2d``; p = inf: max."""
    check_array(x, "x", 4)
    p, g = lp_pool_params(x.shape, norm_type, kernel_size, stride, ceil_mode)
    if math.isinf(p):
        return _max(x, g)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        u, _ = _power_sums(np.power(x, p), g)
        return np.power(u, 1.0 / p).astype(native_dtype(x.dtype), copy=False)


@torch_keywords
def lp_pool2d_backward(dy, x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Gradient of :func:`lp_pool2d` (NumPy): dy * u^(1/p - 1) * kh*kw / n * x^(p-1) summed
    over the windows of each element; 0 from a window with u == 0."""
    check_array(dy, "dy", 4)
    check_array(x, "x", 4)
    dtype = common_dtype(x=x, dy=dy)
    p, g = lp_pool_params(x.shape, norm_type, kernel_size, stride, ceil_mode)
    check_shape(dy, g.y_shape, "dy")
    dx = np.zeros(x.shape, dtype)
    N, C = x.shape[:2]
    nn_, cc = np.arange(N)[:, None, None, None], np.arange(C)[None, :, None, None]
    if math.isinf(p):
        _, arg = _max(x, g)
        np.add.at(dx.reshape(N, C, -1), (nn_, cc, arg), dy)
        return dx
    with np.errstate(invalid="ignore", divide="ignore"):
        u, n = _power_sums(np.power(x, p), g)
        f = np.where(u == 0, 0, dy * np.power(u, 1.0 / p - 1) * (g.kernel[0] * g.kernel[1]) / n)
        xd = np.power(x, p - 1)
        for h, w, real in _windows(g):
            hh, ww = np.broadcast_arrays(h, w)
            contrib = np.where(real, f * xd[:, :, np.minimum(hh, g.H - 1), np.minimum(ww, g.W - 1)], 0)
            np.add.at(dx, (nn_, cc, np.minimum(hh, g.H - 1)[None, None], np.minimum(ww, g.W - 1)[None, None]), contrib)
    return dx.astype(dtype, copy=False)
