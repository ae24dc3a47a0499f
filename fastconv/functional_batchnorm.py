"""2-D batch normalisation on the C kernels of csrc/batchnorm.c: the pieces
:class:`fastconv.nn.BatchNorm2D` is built from (the layer keeps the running
statistics; these functions are stateless). x is NCHW; every per-channel vector
has shape (C,) and x's dtype.

* :func:`batch_norm_train`: batch mean and biased variance (summed in double),
  invstd = 1 / sqrt(var + eps) and y = (x - mean) * invstd * weight + bias;
* :func:`batch_norm_affine`: y = (x - mean) * scale + shift per channel (the eval
  forward, and the eval backward dx = dy * scale);
* :func:`batch_norm_backward`: the per-channel sums of dy and dy * xhat (the bias
  and weight gradients) and dx through the batch statistics; xhat is recomputed
  from x, mean and invstd, never stored.

Each channel is reduced by one thread in a fixed order, so results do not depend
on the thread count. :mod:`fastconv.reference_batchnorm` is the NumPy oracle.
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K
from . import _runtime
from ._args import batch_norm_inputs, contiguous

__all__ = ["batch_norm_train", "batch_norm_affine", "batch_norm_backward"]


def _vec(v, dtype):
    """A per-channel vector for the kernel: contiguous, or a length-0 array for None."""
    return np.empty(0, dtype) if v is None else contiguous(v)


def batch_norm_train(x, weight, bias, eps):
    """Training-mode batch norm: returns ``(y, mean, var, invstd)``, var biased (divided
    by N*H*W). ``weight`` / ``bias`` (C,) or None (1 / 0)."""
    N, C, L, dtype = batch_norm_inputs(x, dict(weight=weight, bias=bias), batch_stats=True)
    y = np.empty(x.shape, dtype)
    mean, var, invstd = (np.empty(C, dtype) for _ in range(3))
    K.bn_fwd_train(N, C, L, float(eps), contiguous(x).reshape(-1), _vec(weight, dtype),
                   _vec(bias, dtype), y.reshape(-1), mean, var, invstd,
                   _runtime.kernel_threads(x.size))
    return y, mean, var, invstd


def batch_norm_affine(x, mean, scale, shift):
    """y = (x - mean) * scale + shift, per channel (``mean`` / ``shift`` None: 0)."""
    N, C, L, dtype = batch_norm_inputs(x, dict(mean=mean, scale=scale, shift=shift),
                                       required=("scale",))
    y = np.empty(x.shape, dtype)
    K.bn_affine(N, C, L, contiguous(x).reshape(-1), _vec(mean, dtype), contiguous(scale),
                _vec(shift, dtype), y.reshape(-1), _runtime.kernel_threads(x.size))
    return y


def batch_norm_backward(dy, x, mean, invstd, weight, need_dx=True):
    """Backward of :func:`batch_norm_train` given its x, mean and invstd: returns
    ``(dx, sum_dy, sum_dy_xhat)`` with xhat = (x - mean) * invstd and dx =
    weight * invstd * (dy - sum_dy / n - xhat * sum_dy_xhat / n), n = N*H*W
    (dx None unless ``need_dx``; ``weight`` None: 1). Only dx needs N*H*W >= 2."""
    N, C, L, dtype = batch_norm_inputs(x, dict(mean=mean, invstd=invstd, weight=weight), dy,
                                       batch_stats=need_dx, required=("mean", "invstd"))
    dx = np.empty(x.shape, dtype) if need_dx else np.empty(0, dtype)
    sum_dy, sum_dy_xhat = np.empty(C, dtype), np.empty(C, dtype)
    if N * L == 0:          # no values: the sums are 0
        sum_dy[...] = 0
        sum_dy_xhat[...] = 0
        return None, sum_dy, sum_dy_xhat
    K.bn_bwd(N, C, L, contiguous(x).reshape(-1), contiguous(dy).reshape(-1), contiguous(mean),
             contiguous(invstd), _vec(weight, dtype), sum_dy, sum_dy_xhat, dx.reshape(-1),
             _runtime.kernel_threads(x.size))
    return (dx if need_dx else None), sum_dy, sum_dy_xhat
