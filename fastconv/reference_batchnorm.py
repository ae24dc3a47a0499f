"""2-D batch normalisation in plain NumPy: the oracle for
:mod:`fastconv.functional_batchnorm` (same functions, same signatures, same
argument checks). Sums are taken in float64 whatever the dtype."""

from __future__ import annotations

import numpy as np

from ._args import batch_norm_inputs

__all__ = ["batch_norm_train", "batch_norm_affine", "batch_norm_backward"]


def _c(v):
    return v[:, None, None]


def batch_norm_train(x, weight, bias, eps):
    """Training-mode batch norm: returns ``(y, mean, var, invstd)``, var biased (divided
    by N*H*W). ``weight`` / ``bias`` (C,) or None (1 / 0)."""
    N, C, L, dtype = batch_norm_inputs(x, dict(weight=weight, bias=bias), batch_stats=True)
    x64 = np.asarray(x, np.float64)
    mean64 = x64.mean(axis=(0, 2, 3))
    var64 = ((x64 - _c(mean64)) ** 2).mean(axis=(0, 2, 3))
    invstd64 = 1.0 / np.sqrt(var64 + float(eps))
    scale64 = invstd64 if weight is None else invstd64 * weight.astype(np.float64)
    mean = mean64.astype(dtype)
    y = (x64 - _c(mean.astype(np.float64))) * _c(scale64)
    if bias is not None:
        y += _c(bias.astype(np.float64))
    return y.astype(dtype), mean, var64.astype(dtype), invstd64.astype(dtype)


def batch_norm_affine(x, mean, scale, shift):
    """y = (x - mean) * scale + shift, per channel (``mean`` / ``shift`` None: 0)."""
    N, C, L, dtype = batch_norm_inputs(x, dict(mean=mean, scale=scale, shift=shift),
                                       required=("scale",))
    y = np.asarray(x, dtype) if mean is None else x - _c(mean)
    y = y * _c(scale)
    if shift is not None:
        y = y + _c(shift)
    return y.astype(dtype, copy=False)


def batch_norm_backward(dy, x, mean, invstd, weight, need_dx=True):
    """Backward of :func:`batch_norm_train` given its x, mean and invstd: returns
    ``(dx, sum_dy, sum_dy_xhat)`` with xhat = (x - mean) * invstd and dx =
    weight * invstd * (dy - sum_dy / n - xhat * sum_dy_xhat / n), n = N*H*W
    (dx None unless ``need_dx``; ``weight`` None: 1). Only dx needs N*H*W >= 2."""
    N, C, L, dtype = batch_norm_inputs(x, dict(mean=mean, invstd=invstd, weight=weight), dy,
                                       batch_stats=need_dx, required=("mean", "invstd"))
    n = N * L
    dy64 = np.asarray(dy, np.float64)
    invstd64 = invstd.astype(np.float64)
    xhat = (np.asarray(x, np.float64) - _c(mean.astype(np.float64))) * _c(invstd64)
    sum_dy = dy64.sum(axis=(0, 2, 3))
    sum_dy_xhat = (dy64 * xhat).sum(axis=(0, 2, 3))
    dx = None
    if need_dx:
        a = invstd64 if weight is None else invstd64 * weight.astype(np.float64)
        dx = (_c(a) * (dy64 - _c(sum_dy / n) - xhat * _c(sum_dy_xhat / n))).astype(dtype)
    return dx, sum_dy.astype(dtype), sum_dy_xhat.astype(dtype)
