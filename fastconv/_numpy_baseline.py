"""A good plain-NumPy convolution and pooling: the baseline fastconv's speed is compared against.

Used by :mod:`fastconv.bench` (so ``fastconv bench`` works from an installed
package) and re-exported by ``benchmarks/numpy_conv.py``.

This is how a careful NumPy user would write conv2d without a native extension:

* im2col through ``numpy.lib.stride_tricks.sliding_window_view`` (a strided view
  of every kernel window, no Python loop) followed by one copy into a column
  matrix laid out for the product;
* the products as batched ``matmul`` over groups, each one a single BLAS GEMM
  with the batch folded into the pixel dimension;
* the backward data pass as a GEMM into columns followed by a scatter-add back
  over the R*S kernel offsets (the only Python loop; each iteration is one
  vectorised strided add over all images, channels and pixels).

It deliberately depends on NumPy only (not on fastconv), so the comparison is
fair to NumPy. Layout NCHW, weights (K, C/groups, R, S), PyTorch's semantics;
``padding`` is an int, a pair, ``"valid"`` or ``"same"`` (stride 1).

Column layout used throughout: ``cols[g, (c, r, s), (n, p, q)]``, i.e. shape
``(G, Cg*R*S, N*P*Q)``, so for each group g::

    y_g  = W_g  @ cols_g          (Kg, N*P*Q)
    dW_g = dy_g @ cols_g.T        (Kg, Cg*R*S)
    dcols_g = W_g.T @ dy_g        (Cg*R*S, N*P*Q)   then scattered back into dx
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_backward",
]


def _pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _padding(padding, R, S, dilation, stride):
    """(top, bottom, left, right) as PyTorch: int, pair, "valid" or "same" (stride 1)."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise ValueError('padding="same" needs stride 1')
            th, tw = dilation[0] * (R - 1), dilation[1] * (S - 1)
            return th // 2, th - th // 2, tw // 2, tw - tw // 2
        raise ValueError(f"bad padding {padding!r}")
    ph, pw = _pair(padding)
    return ph, ph, pw, pw


def _geometry(x_shape, w_shape, stride, padding, dilation, groups):
    N, C, H, W = x_shape
    K, Cg, R, S = w_shape
    if Cg * groups != C or K % groups:
        raise ValueError(f"x {x_shape} and w {w_shape} do not fit groups={groups}")
    stride, dilation = _pair(stride), _pair(dilation)
    pads = _padding(padding, R, S, dilation, stride)
    P = (H + pads[0] + pads[1] - dilation[0] * (R - 1) - 1) // stride[0] + 1
    Q = (W + pads[2] + pads[3] - dilation[1] * (S - 1) - 1) // stride[1] + 1
    if P < 1 or Q < 1:
        raise ValueError("kernel larger than the padded input")
    return stride, dilation, pads, P, Q


def _pad(x, pads):
    if not any(pads):
        return x
    t, b, l, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))


def _windows(xp, R, S, stride, dilation, P, Q):
    """Strided view (N, C, P, Q, R, S) of every kernel window of the padded input."""
    (sh, sw), (dh, dw) = stride, dilation
    v = sliding_window_view(xp, (dh * (R - 1) + 1, dw * (S - 1) + 1), axis=(2, 3))
    return v[:, :, : sh * (P - 1) + 1 : sh, : sw * (Q - 1) + 1 : sw, ::dh, ::dw]


def _im2col(x, w_shape, groups, stride, dilation, pads, P, Q):
    """Columns (G, Cg*R*S, N*P*Q): one copy of the strided window view."""
    N, C = x.shape[:2]
    _, Cg, R, S = w_shape
    v = _windows(_pad(x, pads), R, S, stride, dilation, P, Q)  # (N, C, P, Q, R, S)
    v = v.reshape(N, groups, Cg, P, Q, R, S).transpose(1, 2, 5, 6, 0, 3, 4)  # (G, Cg, R, S, N, P, Q)
    return np.ascontiguousarray(v).reshape(groups, Cg * R * S, N * P * Q)


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """y (N, K, P, Q) = conv2d(x (N, C, H, W), w (K, C/groups, R, S)) + b (K,)."""
    N = x.shape[0]
    K, Cg, R, S = w.shape
    stride, dilation, pads, P, Q = _geometry(x.shape, w.shape, stride, padding, dilation, groups)
    cols = _im2col(x, w.shape, groups, stride, dilation, pads, P, Q)
    wm = w.reshape(groups, K // groups, Cg * R * S)
    y = np.matmul(wm, cols)  # (G, Kg, N*P*Q): one GEMM per group
    y = y.reshape(K, N, P, Q).transpose(1, 0, 2, 3)
    if b is not None:
        y = y + b.reshape(1, K, 1, 1)  # also makes y C-contiguous
    return np.ascontiguousarray(y)


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1, need_dx=True, need_db=True):
    """(dx, dw, db) of :func:`conv2d_forward` for the output gradient dy (N, K, P, Q)."""
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    G, Kg = groups, K // groups
    stride, dilation, pads, P, Q = _geometry(x.shape, w.shape, stride, padding, dilation, groups)
    if dy.shape != (N, K, P, Q):
        raise ValueError(f"dy must have shape {(N, K, P, Q)}, got {dy.shape}")
    # dy as (G, Kg, N*P*Q) to match the column layout
    dym = np.ascontiguousarray(dy.reshape(N, G, Kg, P * Q).transpose(1, 2, 0, 3)).reshape(G, Kg, N * P * Q)

    db = dy.sum(axis=(0, 2, 3)) if need_db else None

    cols = _im2col(x, w.shape, G, stride, dilation, pads, P, Q)
    dw = np.matmul(dym, cols.transpose(0, 2, 1)).reshape(K, Cg, R, S)  # one GEMM per group
    del cols

    dx = None
    if need_dx:
        wm = w.reshape(G, Kg, Cg * R * S)
        dcols = np.matmul(wm.transpose(0, 2, 1), dym)  # (G, Cg*R*S, N*P*Q)
        dcols = dcols.reshape(G, Cg, R, S, N, P, Q)
        t, b_, l, r = pads
        (sh, sw), (dh, dw_) = stride, dilation
        dxp = np.zeros((N, G, Cg, H + t + b_, W + l + r), dtype=dy.dtype)
        for i in range(R):
            for j in range(S):
                h0, w0 = i * dh, j * dw_
                # (G, Cg, N, P, Q) -> (N, G, Cg, P, Q), added onto this offset's strided view
                dxp[..., h0 : h0 + sh * (P - 1) + 1 : sh, w0 : w0 + sw * (Q - 1) + 1 : sw] += dcols[
                    :, :, i, j
                ].transpose(2, 0, 1, 3, 4)
        dx = np.ascontiguousarray(dxp.reshape(N, C, H + t + b_, W + l + r)[:, :, t : t + H, l : l + W])
    return dx, dw, db


# ---------------------------------------------------------------- pooling
#
# Pooling the way a NumPy user writes it: a strided window view of the padded
# input reduced over its two kernel axes (max / mean), and a backward that adds
# the gradient back over the kh*kw kernel offsets (one vectorised strided add
# per offset). Floor output size, no dilation; average pooling counts the
# padding in its divisor (PyTorch's default count_include_pad=True).


def _pool_geometry(x_shape, kernel_size, stride, padding):
    N, C, H, W = x_shape
    kh, kw = _pair(kernel_size)
    sh, sw = (kh, kw) if stride is None else _pair(stride)
    ph, pw = _pair(padding)
    P = (H + 2 * ph - kh) // sh + 1
    Q = (W + 2 * pw - kw) // sw + 1
    if P < 1 or Q < 1:
        raise ValueError("pooling kernel larger than the padded input")
    return (kh, kw), (sh, sw), (ph, pw), P, Q


def _pool_windows(x, kernel, stride, pads, P, Q, fill):
    """Strided view (N, C, P, Q, kh, kw) of every pooling window of x padded with ``fill``."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pads
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    v = sliding_window_view(x, (kh, kw), axis=(2, 3))
    return v[:, :, : sh * (P - 1) + 1 : sh, : sw * (Q - 1) + 1 : sw]


def _scatter_offsets(parts, x_shape, kernel, stride, pads, P, Q, dtype):
    """dx: add parts(i, j) (N, C, P, Q) onto every kernel offset's strided view, then crop."""
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pads
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * (P - 1) + 1 : sh, j : j + sw * (Q - 1) + 1 : sw] += parts(i, j)
    return np.ascontiguousarray(dxp[:, :, ph : ph + H, pw : pw + W])


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, return_indices=False):
    """Max pooling y (N, C, P, Q); with ``return_indices`` also the window-local argmax.

    The argmax is ``i*kw + j`` within each window (first maximum), which is what
    :func:`max_pool2d_backward` takes.
    """
    kernel, stride, pads, P, Q = _pool_geometry(x.shape, kernel_size, stride, padding)
    v = _pool_windows(x, kernel, stride, pads, P, Q, -np.inf)
    if not return_indices:
        return v.max(axis=(4, 5))
    flat = v.reshape(v.shape[:4] + (kernel[0] * kernel[1],))  # one copy of the windows
    arg = flat.argmax(axis=4)
    y = np.take_along_axis(flat, arg[..., None], axis=4)[..., 0]
    return y, arg


def max_pool2d_backward(dy, arg, x_shape, kernel_size, stride=None, padding=0):
    """dx of :func:`max_pool2d_forward`: each dy goes to its window's argmax."""
    kernel, stride, pads, P, Q = _pool_geometry(x_shape, kernel_size, stride, padding)
    kw = kernel[1]
    zero = dy.dtype.type(0)
    return _scatter_offsets(lambda i, j: np.where(arg == i * kw + j, dy, zero),
                            x_shape, kernel, stride, pads, P, Q, dy.dtype)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """Average pooling y (N, C, P, Q); zero padding counts in the divisor."""
    kernel, stride, pads, P, Q = _pool_geometry(x.shape, kernel_size, stride, padding)
    return _pool_windows(x, kernel, stride, pads, P, Q, 0).mean(axis=(4, 5), dtype=x.dtype)


def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0):
    """dx of :func:`avg_pool2d_forward`: dy / (kh*kw) spread over each window."""
    kernel, stride, pads, P, Q = _pool_geometry(x_shape, kernel_size, stride, padding)
    part = dy * dy.dtype.type(1.0 / (kernel[0] * kernel[1]))
    return _scatter_offsets(lambda i, j: part, x_shape, kernel, stride, pads, P, Q, dy.dtype)
