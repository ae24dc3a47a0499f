"""Plain NumPy reference implementations of every fastconv operation.

This module is the oracle that every native kernel is tested against, and it
is meant to be read. Each function does the obvious thing:

* pad the input explicitly,
* loop over the offsets ``(r, s)`` of the kernel (or pooling) window,
* for each offset take the strided "view" of the padded input that this
  offset touches, one element per output pixel, and combine it.

Everything is vectorised over batch, channels and output pixels; the only
Python loops are over groups and window offsets, so the functions are fast
enough for tests on many shapes. The signatures, defaults and argument checks
are the same as the public function API (:mod:`fastconv.functional`), because
both use :mod:`fastconv._args`. Semantics follow PyTorch.

Notation used in the docstrings (NCHW layout)::

    x  : (N, C, H, W)        input: batch, channels, height, width
    w  : (K, C/G, R, S)      weights: output channels, input channels per group, kernel height, width
    y  : (N, K, P, Q)        output; P, Q = output height and width
    G  : groups, s = stride, d = dilation, p = padding

The output size of a convolution is ``P = floor((H + p_top + p_bottom - d(R-1) - 1) / s) + 1``.
"""

from __future__ import annotations

import numpy as np

from fastconv._args import (
    check_algo,
    check_winograd,
    check_array,
    check_max_pool_windows,
    check_shape,
    common_dtype,
    conv_params,
    fold_params,
    linear_params,
    native_dtype,
    pool_params,
    shape4,
    torch_keywords,
    unfold_params,
)

__all__ = [
    "conv2d",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "im2col",
    "col2im",
    "relu",
    "relu_backward",
    "linear",
    "linear_backward",
]



# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def _pad(x, top, bottom, left, right, value=0.0):
    """Pad the last two axes of ``x`` with a constant (a new array)."""
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def _window(a, h0, w0, sh, sw, P, Q):
    """The (P, Q) grid of ``a[..., h0 + sh*p, w0 + sw*q]`` as a view (writable if ``a`` is).

    This is what one kernel offset sees: for offset (r, s) of a convolution,
    ``h0 = r * dilation_h`` and ``w0 = s * dilation_w`` in the padded input.
    """
    return a[..., h0 : h0 + sh * (P - 1) + 1 : sh, w0 : w0 + sw * (Q - 1) + 1 : sw]


def _crop(a, top, left, H, W):
    """Remove padding: the (H, W) block of ``a`` that starts at (top, left)."""
    return np.ascontiguousarray(a[:, :, top : top + H, left : left + W])


def _extra_end_pad(size, pad, P, k, s, d):
    """Padding at the end of an axis so that all P windows fit in the padded array.

    With ``ceil_mode`` the last pooling window may reach past the ``pad``
    elements of end padding; it is never less than 0.
    """
    needed = (P - 1) * s + d * (k - 1) + 1  # extent of the padded axis the windows touch
    return max(needed - pad - size, 0)


# ---------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------


@torch_keywords
def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algo="auto"):
    """2-D cross-correlation (what deep-learning libraries call convolution), as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : (N, C, H, W) float32 or float64 array
    w : (K, C/groups, R, S) array of the same dtype
    b : (K,) array of the same dtype, or None
    stride, dilation : int or pair (sh, sw), (dh, dw), each >= 1
    padding : int, pair, ``"valid"`` (no padding) or ``"same"`` (output size = input
        size; stride 1 only; for an even dilated kernel the extra row/column of
        padding goes at the bottom/right, as PyTorch)
    groups : int dividing both C and K; channel group g of the input only feeds
        output channels ``g*K/G .. (g+1)*K/G - 1``
    algo : any name ``fastconv.conv2d`` accepts (``fastconv._args.ALGOS``); checked and
        ignored here

    Returns
    -------
    y : (N, K, P, Q) array of the input dtype, where, with ``xp`` the zero-padded
        input, ``Cg = C/G``, ``Kg = K/G`` and ``g = k // Kg`` the group of ``k``::

            y[n, k, p, q] = b[k] + sum_{c < Cg, r < R, s < S}
                            w[k, c, r, s] * xp[n, g*Cg + c, p*sh + r*dh, q*sw + s*dw]
    """
    x = check_array(x, "x", 4)
    w = check_array(w, "w", 4)
    if b is not None:
        b = check_array(b, "b", 1)
    dtype = common_dtype(x=x, w=w, b=b)  # native byte order
    check_algo(algo)
    g = conv_params(x.shape, w.shape, stride, padding, dilation, groups)
    if b is not None:
        check_shape(b, (g.K,), "b")
    if algo == "winograd":
        check_winograd(g)  # the same geometry rule as the native API
    (sh, sw), (dh, dw) = g.stride, g.dilation
    Cg, Kg = g.C // g.groups, g.K // g.groups

    xp = _pad(x, g.pad_top, g.pad_bottom, g.pad_left, g.pad_right)
    y = np.zeros(g.y_shape, dtype=dtype)
    for grp in range(g.groups):
        cin = slice(grp * Cg, (grp + 1) * Cg)  # this group's input channels
        cout = slice(grp * Kg, (grp + 1) * Kg)  # and its output channels
        for r in range(g.R):
            for s in range(g.S):
                # patch[n, c, p, q] = xp[n, c, p*sh + r*dh, q*sw + s*dw]: (N, Cg, P, Q)
                patch = _window(xp[:, cin], r * dh, s * dw, sh, sw, g.P, g.Q)
                # mix channels with this offset's (Kg, Cg) slice of the weights
                y[:, cout] += np.einsum("kc,ncpq->nkpq", w[cout, :, r, s], patch, optimize=True)
    if b is not None:
        y += b[:, None, None]
    return y


@torch_keywords
def conv2d_backward(
    dy,
    x,
    w,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    need_dx=True,
    need_db=True,
    algo="auto",
):
    """Gradients of :func:`conv2d` with respect to its input, weights and bias.

    Parameters
    ----------
    dy : (N, K, P, Q) gradient of the loss with respect to the output ``y``
    x, w, stride, padding, dilation, groups, algo : as in :func:`conv2d`
    need_dx, need_db : compute ``dx`` / ``db`` (otherwise None is returned in their place)

    Returns
    -------
    (dx, dw, db) with shapes (N, C, H, W), (K, C/G, R, S), (K,)::

        db[k]          = sum_{n, p, q} dy[n, k, p, q]
        dw[k, c, r, s] = sum_{n, p, q} dy[n, k, p, q] * xp[n, g*Cg + c, p*sh + r*dh, q*sw + s*dw]
        dxp[n, g*Cg + c, p*sh + r*dh, q*sw + s*dw] += sum_k w[k, c, r, s] * dy[n, k, p, q]

    ``dxp`` is the gradient of the padded input; ``dx`` is ``dxp`` with the
    padding cropped away (gradient that flows into padding is discarded).
    """
    dy = check_array(dy, "dy", 4)
    x = check_array(x, "x", 4)
    w = check_array(w, "w", 4)
    dtype = common_dtype(x=x, w=w)
    check_algo(algo)
    g = conv_params(x.shape, w.shape, stride, padding, dilation, groups)
    common_dtype(x=x, dy=dy)
    check_shape(dy, g.y_shape, "dy")
    if algo == "winograd":
        check_winograd(g)
    (sh, sw), (dh, dw_) = g.stride, g.dilation
    Cg, Kg = g.C // g.groups, g.K // g.groups

    xp = _pad(x, g.pad_top, g.pad_bottom, g.pad_left, g.pad_right)
    dxp = np.zeros(xp.shape, dtype=dtype) if need_dx else None
    dw = np.zeros(w.shape, dtype=dtype)
    for grp in range(g.groups):
        cin = slice(grp * Cg, (grp + 1) * Cg)
        cout = slice(grp * Kg, (grp + 1) * Kg)
        dy_g = dy[:, cout]  # (N, Kg, P, Q)
        for r in range(g.R):
            for s in range(g.S):
                patch = _window(xp[:, cin], r * dh, s * dw_, sh, sw, g.P, g.Q)
                # weight gradient: correlate dy with what this offset saw
                dw[cout, :, r, s] = np.einsum("nkpq,ncpq->kc", dy_g, patch, optimize=True)
                if need_dx:
                    # data gradient: send dy back through the same offset (a scatter-add;
                    # within one offset the P*Q positions are distinct, so += on the view is exact)
                    dpatch = _window(dxp[:, cin], r * dh, s * dw_, sh, sw, g.P, g.Q)
                    dpatch += np.einsum("kc,nkpq->ncpq", w[cout, :, r, s], dy_g, optimize=True)
    dx = _crop(dxp, g.pad_top, g.pad_left, g.H, g.W) if need_dx else None
    db = dy.sum(axis=(0, 2, 3), dtype=dtype) if need_db else None
    return dx, dw, db


# ---------------------------------------------------------------------------
# im2col / col2im
# ---------------------------------------------------------------------------


@torch_keywords
def im2col(x, kernel_size, dilation=1, padding=0, stride=1):
    """Unfold every kernel window of ``x`` into a column, as ``torch.nn.functional.unfold``.

    Parameters
    ----------
    x : (N, C, H, W) array
    kernel_size, stride, dilation : int or pair (>= 1)
    padding : int or pair (>= 0), zero padding on both sides (``"valid"`` and
        ``"same"`` are accepted too, as in :func:`conv2d`)

    Returns
    -------
    cols : (N, C*R*S, P*Q) array of the input dtype::

        cols[n, c*R*S + r*S + s, p*Q + q] = xp[n, c, p*sh + r*dh, q*sw + s*dw]

    so that a convolution (groups=1) is ``w.reshape(K, C*R*S) @ cols``.
    """
    x = check_array(x, "x", 4)
    dtype = native_dtype(x.dtype)
    g = unfold_params(x.shape, kernel_size, stride, padding, dilation)
    (sh, sw), (dh, dw) = g.stride, g.dilation

    xp = _pad(x, g.pad_top, g.pad_bottom, g.pad_left, g.pad_right)
    cols = np.empty((g.N, g.C, g.R, g.S, g.P, g.Q), dtype=dtype)
    for r in range(g.R):
        for s in range(g.S):
            cols[:, :, r, s] = _window(xp, r * dh, s * dw, sh, sw, g.P, g.Q)
    return cols.reshape(g.N, g.C * g.R * g.S, g.P * g.Q)


@torch_keywords
def col2im(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Fold columns back into an image, summing overlaps, as ``torch.nn.functional.fold``.

    The adjoint of :func:`im2col`: ``<im2col(x), c> == <x, col2im(c)>`` for any x, c.

    Parameters
    ----------
    cols : (N, C*R*S, P*Q) array, laid out as :func:`im2col` produces
    output_size : (H, W) of the image, int or pair
    kernel_size, stride, padding, dilation : as in :func:`im2col`

    Returns
    -------
    x : (N, C, H, W) array of the input dtype::

        xp[n, c, p*sh + r*dh, q*sw + s*dw] += cols[n, c*R*S + r*S + s, p*Q + q]

    followed by cropping away the padding.
    """
    cols = check_array(cols, "cols", 3)
    dtype = native_dtype(cols.dtype)
    g = fold_params(cols.shape, output_size, kernel_size, stride, padding, dilation)
    (sh, sw), (dh, dw) = g.stride, g.dilation

    blocks = cols.reshape(g.N, g.C, g.R, g.S, g.P, g.Q)
    xp = np.zeros((g.N, g.C, g.H + g.pad_top + g.pad_bottom, g.W + g.pad_left + g.pad_right), dtype)
    for r in range(g.R):
        for s in range(g.S):
            _window(xp, r * dh, s * dw, sh, sw, g.P, g.Q)[...] += blocks[:, :, r, s]
    return _crop(xp, g.pad_top, g.pad_left, g.H, g.W)


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------


def _taps(P, k, s, pad, d):
    """taps[p, i] = input coordinate of tap i of window p along one axis (may be in the padding)."""
    return np.arange(P)[:, None] * s - pad + np.arange(k)[None, :] * d


@torch_keywords
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling, as ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    x : (N, C, H, W) array
    kernel_size : int or pair (kh, kw)
    stride : int or pair; None means ``stride = kernel_size``
    padding : int or pair, at most half the dilated kernel; padding acts as -inf
        and is never selected
    dilation : int or pair, spacing between window taps
    ceil_mode : round the output size up instead of down (the last window must
        still start inside the input or the top/left padding)
    return_indices : also return the argmax indices

    Returns
    -------
    y : (N, C, P, Q) array of the input dtype, ``y[n, c, p, q] = max over i < kh, j < kw``
        of ``x[n, c, p*sh - ph + i*dh, q*sw - pw + j*dw]`` (real elements only);
    idx : (N, C, P, Q) int64 (only if ``return_indices``), the flat position
        ``h*W + w`` of the chosen element in its (H, W) plane.

    The window is scanned in row-major order (i, then j). Ties go to the first
    maximum; a NaN wins over every number and the first NaN is kept (NaN
    propagates); an all -inf window yields -inf and its first real element.
    """
    x = check_array(x, "x", 4)
    dtype = native_dtype(x.dtype)
    g = pool_params(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    check_max_pool_windows(g)  # a window of padding only has no element to point at
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = g.kernel, g.stride, g.padding, g.dilation

    xp = _pad(
        x,
        ph,
        _extra_end_pad(g.H, ph, g.P, kh, sh, dh),
        pw,
        _extra_end_pad(g.W, pw, g.Q, kw, sw, dw),
        value=-np.inf,
    )
    rows = _taps(g.P, kh, sh, ph, dh)  # (P, kh) input row of each tap
    cols = _taps(g.Q, kw, sw, pw, dw)  # (Q, kw) input column of each tap

    best = np.full(g.y_shape, -np.inf, dtype=dtype)
    best_idx = np.full(g.y_shape, -1, dtype=np.int64)  # -1: no real element seen yet
    for i in range(kh):
        for j in range(kw):
            v = _window(xp, i * dh, j * dw, sh, sw, g.P, g.Q)  # (N, C, P, Q)
            h, w_ = rows[:, i][:, None], cols[:, j][None, :]  # (P, 1), (1, Q)
            # (P, Q) mask of taps on real elements. The -inf padding alone would lose every
            # comparison, but an all -inf window must still point at a real element.
            real = (h >= 0) & (h < g.H) & (w_ >= 0) & (w_ < g.W)
            better = (v > best) | (np.isnan(v) & ~np.isnan(best))
            take = real & ((best_idx < 0) | better)
            best = np.where(take, v, best)
            best_idx = np.where(take, h * g.W + w_, best_idx)
    if return_indices:
        return best, best_idx
    return best


@torch_keywords
def max_pool2d_backward(dy, idx, x_shape):
    """Gradient of :func:`max_pool2d`: route each output gradient to the element it came from.

    Parameters
    ----------
    dy : (N, C, P, Q) gradient with respect to the pooled output
    idx : (N, C, P, Q) integer array (normally int64), the indices returned by
        ``max_pool2d(..., return_indices=True)``; each in ``[0, H*W)``
    x_shape : (N, C, H, W) shape of the pooling input

    Returns
    -------
    dx : (N, C, H, W) array of dy's dtype, zero except::

        dx[n, c].flat[idx[n, c, p, q]] += dy[n, c, p, q]   for every p, q

    (overlapping windows that chose the same element add up).
    """
    dy = check_array(dy, "dy", 4)
    dtype = native_dtype(dy.dtype)
    x_shape = shape4(x_shape, "x_shape")
    if not isinstance(idx, np.ndarray):
        raise TypeError(f"idx must be a numpy.ndarray, got {type(idx).__name__}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"idx must be an integer array (int64), got dtype {idx.dtype}")
    check_shape(idx, dy.shape, "idx")
    N, C, H, W = x_shape
    if dy.shape[:2] != (N, C):
        raise ValueError(f"dy has shape {dy.shape}, which does not match x_shape {x_shape} in (N, C)")
    if H < 1 or W < 1 or C < 1:
        raise ValueError(f"x_shape must have C, H and W >= 1, got {x_shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= H * W):
        raise ValueError(f"idx holds values outside [0, H*W) = [0, {H * W})")

    dx = np.zeros((N, C, H * W), dtype=dtype)
    n = np.arange(N)[:, None, None, None]
    c = np.arange(C)[None, :, None, None]
    np.add.at(dx, (n, c, idx), dy)  # unbuffered: repeated indices add up
    return dx.reshape(N, C, H, W)


def _avg_divisor(size, P, k, s, pad, count_include_pad):
    """Per-window element count along one axis (PyTorch's rule).

    Window p covers input coordinates ``[p*s - pad, p*s - pad + k)``, clipped to the
    padded extent ``[-pad, size + pad)``; with ``count_include_pad=False`` it is
    clipped to the real input ``[0, size)`` instead.
    """
    start = np.arange(P) * s - pad
    end = np.minimum(start + k, size + pad)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def _avg_geometry(x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    g = pool_params(x_shape, kernel_size, stride, padding, 1, ceil_mode)
    (kh, kw), (sh, sw), (ph, pw) = g.kernel, g.stride, g.padding
    div_h = _avg_divisor(g.H, g.P, kh, sh, ph, count_include_pad)
    div_w = _avg_divisor(g.W, g.Q, kw, sw, pw, count_include_pad)
    divisor = div_h[:, None] * div_w[None, :]  # (P, Q), >= 1: every window holds a real element
    pads = (ph, _extra_end_pad(g.H, ph, g.P, kh, sh, 1), pw, _extra_end_pad(g.W, pw, g.Q, kw, sw, 1))
    return g, divisor, pads


@torch_keywords
def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Average pooling, as ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    x : (N, C, H, W) array
    kernel_size : int or pair (kh, kw)
    stride : int or pair; None means ``stride = kernel_size``
    padding : int or pair, zero padding, at most half the kernel
    ceil_mode : round the output size up (as :func:`max_pool2d`)
    count_include_pad : whether padding counts in the divisor

    Returns
    -------
    y : (N, C, P, Q) array of the input dtype::

        y[n, c, p, q] = (sum of x over the window, padding counting as 0) / D[p, q]

    where ``D`` is the number of window elements inside the padded input
    (``count_include_pad=True``; the part of a ceil_mode window that hangs past
    the padding is not counted) or inside the real input (False).
    """
    x = check_array(x, "x", 4)
    dtype = native_dtype(x.dtype)
    g, divisor, pads = _avg_geometry(x.shape, kernel_size, stride, padding, ceil_mode, bool(count_include_pad))
    (kh, kw), (sh, sw) = g.kernel, g.stride

    xp = _pad(x, *pads)
    total = np.zeros(g.y_shape, dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            total += _window(xp, i, j, sh, sw, g.P, g.Q)
    return total / divisor.astype(dtype)


@torch_keywords
def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Gradient of :func:`avg_pool2d`: spread each output gradient evenly over its window.

    Parameters
    ----------
    dy : (N, C, P, Q) gradient with respect to the pooled output
    x_shape : (N, C, H, W) shape of the pooling input
    kernel_size, stride, padding, ceil_mode, count_include_pad : as in :func:`avg_pool2d`

    Returns
    -------
    dx : (N, C, H, W) array of dy's dtype::

        dxp[n, c, p*sh + i, q*sw + j] += dy[n, c, p, q] / D[p, q]   for i < kh, j < kw

    with ``dxp`` the padded gradient, cropped to (H, W) at the end.
    """
    dy = check_array(dy, "dy", 4)
    dtype = native_dtype(dy.dtype)
    x_shape = shape4(x_shape, "x_shape")
    g, divisor, pads = _avg_geometry(x_shape, kernel_size, stride, padding, ceil_mode, bool(count_include_pad))
    check_shape(dy, g.y_shape, "dy")
    (kh, kw), (sh, sw) = g.kernel, g.stride

    share = dy / divisor.astype(dtype)  # what each window element receives
    dxp = np.zeros((g.N, g.C, g.H + pads[0] + pads[1], g.W + pads[2] + pads[3]), dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            _window(dxp, i, j, sh, sw, g.P, g.Q)[...] += share
    return _crop(dxp, pads[0], pads[2], g.H, g.W)


# ---------------------------------------------------------------------------
# activation
# ---------------------------------------------------------------------------


@torch_keywords
def relu(x):
    """Rectified linear unit, elementwise: ``y = max(x, 0)`` (NaN stays NaN). Any shape."""
    x = check_array(x, "x")
    return np.maximum(x, 0).astype(native_dtype(x.dtype), copy=False)


@torch_keywords
def relu_backward(dy, x):
    """Gradient of :func:`relu`: ``dx = 0 where x <= 0, else dy``. dy and x: same shape.

    Written with ``where`` rather than ``dy * (x > 0)`` so that a NaN or inf in dy
    does not leak into positions where the gradient is exactly 0; a NaN in x
    passes dy through, as PyTorch's threshold_backward does.
    """
    dy = check_array(dy, "dy")
    x = check_array(x, "x")
    dtype = native_dtype(common_dtype(dy=dy, x=x))
    check_shape(dy, x.shape, "dy")
    return np.where(x <= 0, np.zeros((), dtype), dy).astype(dtype, copy=False)


# ---------------------------------------------------------------------------
# fully connected
# ---------------------------------------------------------------------------


@torch_keywords
def linear(x, w, b=None):
    """Fully connected layer: ``y = x @ w.T + b``. x (N, in_features), w (out_features,
    in_features), b (out_features,) or None; returns y (N, out_features)."""
    dtype = native_dtype(linear_params(x, w, b)[0])
    y = np.matmul(x.astype(dtype, copy=False), w.astype(dtype, copy=False).T)
    if b is not None:
        y += b.astype(dtype, copy=False)
    return y.astype(dtype, copy=False)


@torch_keywords
def linear_backward(dy, x, w, need_dx=True, need_db=True):
    """Gradients of :func:`linear`: ``dx = dy @ w``, ``dw = dy.T @ x``, ``db = dy.sum(0)``.

    Returns (dx, dw, db); dx is None when ``need_dx`` is false, db when ``need_db`` is false.
    """
    dtype = native_dtype(linear_params(x, w, None, dy)[0])
    dy, x, w = (a.astype(dtype, copy=False) for a in (dy, x, w))
    dw = np.matmul(dy.T, x).astype(dtype, copy=False)
    db = dy.sum(axis=0, dtype=dtype) if need_db else None
    dx = np.matmul(dy, w).astype(dtype, copy=False) if need_dx else None
    return dx, dw, db
from .reference_conv_transpose import conv_transpose2d, conv_transpose2d_backward  # noqa: E402,F401
from .reference_adaptive_pool import adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_max_pool2d, adaptive_max_pool2d_backward  # noqa: E402,F401,E501
from .reference_lp_pool import lp_pool2d, lp_pool2d_backward  # noqa: E402,F401
from .reference_conv1d import conv1d, conv1d_backward  # noqa: E402,F401
from .reference_deform import deform_conv2d, deform_conv2d_backward  # noqa: E402,F401
from .reference_batchnorm import batch_norm_affine, batch_norm_backward, batch_norm_train  # noqa: E402,F401
from .qreference import *  # noqa: E402,F401,F403  (the int8 oracle: qconv2d, qlinear, qgemm, ...)
