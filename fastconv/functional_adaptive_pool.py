"""Adaptive average and max pooling (PyTorch's ``adaptive_avg_pool2d`` /
``adaptive_max_pool2d``), NCHW, and their gradients.

Output cell (i, j) pools the window rows [floor(i*H/oh), ceil((i+1)*H/oh)) and columns
[floor(j*W/ow), ceil((j+1)*W/ow)) (:func:`fastconv._args.adaptive_windows`).

Why vectorised NumPy and not a C kernel: the windows are separable (a row window
depends only on i, a column window only on j), so both pools are two 1-d passes, first
along W then along H. Along one axis the windows take at most three distinct lengths;
for each length L, ``sliding_window_view`` gives all windows of that length as one
strided array, and one NumPy reduction (``sum`` / ``max`` + ``argmax``) handles every
window of that length at once. So the Python loop runs at most 3 times per axis, and
the work is the same element count a C loop would touch: the op is memory-bound, and a
new C kernel (and its bindings) would buy little. The max pool's gradient is the
existing C scatter of ``max_pool2d_backward`` (``fc_maxpool2d_bwd``), which checks every
index before writing.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import _kernels as K
from . import _runtime
from ._args import (
    check_array,
    check_shape,
    contiguous,
    native_dtype,
    shape4,
    torch_keywords,
)
from ._args import adaptive_output_size, adaptive_windows

__all__ = ["adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d",
           "adaptive_max_pool2d_backward"]


def _by_length(size, out):
    """[(L, cell indices, starts)] grouping the adaptive windows by their length L."""
    start, end = adaptive_windows(size, out)
    length = end - start
    return [(int(L), np.flatnonzero(length == L), start[length == L])
            for L in np.unique(length)]


def _avg_axis(a, axis, out):
    """Mean over the adaptive windows of ``a`` along ``axis`` (2 or 3)."""
    shape = list(a.shape)
    shape[axis] = out
    res = np.empty(shape, a.dtype)
    for L, cells, starts in _by_length(a.shape[axis], out):
        win = np.take(sliding_window_view(a, L, axis=axis), starts, axis=axis)
        red = win.sum(axis=-1)
        red /= L
        idx = [slice(None)] * 4
        idx[axis] = cells
        res[tuple(idx)] = red
    return res


def _avg_axis_backward(d, axis, size):
    """Adjoint of :func:`_avg_axis`: spread d (window means along ``axis``) back over a
    ``size``-long axis."""
    out = d.shape[axis]
    shape = list(d.shape)
    shape[axis] = size
    res = np.zeros(shape, d.dtype)
    for L, cells, starts in _by_length(size, out):
        part = np.take(d, cells, axis=axis) / L
        unique = starts.size < 2 or bool(np.all(np.diff(starts) > 0))
        for t in range(L):
            idx = [slice(None)] * 4
            idx[axis] = starts + t
            if unique:
                res[tuple(idx)] += part
            else:   # more cells than input positions: windows of one length repeat
                np.add.at(res, tuple(idx), part)
    return res


@torch_keywords
def adaptive_avg_pool2d(x, output_size):
    """Adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool2d``.

    x: (N, C, H, W); output_size: int or pair (an entry None keeps that input size).
    Returns y (N, C, oh, ow): the mean of each adaptive window.
    """
    check_array(x, "x", 4)
    oh, ow = adaptive_output_size(x.shape, output_size)
    x = contiguous(x)
    return _avg_axis(_avg_axis(x, 3, ow), 2, oh)


@torch_keywords
def adaptive_avg_pool2d_backward(dy, x_shape):
    """Gradient of :func:`adaptive_avg_pool2d`: dx of shape ``x_shape`` (the output size
    is dy's)."""
    check_array(dy, "dy", 4)
    x_shape = shape4(x_shape, "x_shape")
    oh, ow = adaptive_output_size(x_shape, dy.shape[2:])
    check_shape(dy, x_shape[:2] + (oh, ow), "dy")
    dy = contiguous(dy)
    return np.ascontiguousarray(
        _avg_axis_backward(_avg_axis_backward(dy, 2, x_shape[2]), 3, x_shape[3]))


@torch_keywords
def adaptive_max_pool2d(x, output_size, return_indices=False):
    """Adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool2d``.

    Returns y (N, C, oh, ow), and with ``return_indices`` also idx: int64, the flat index
    h*W + w in each (H, W) plane of the first maximum of each window in row-major order.
    NaN propagates and counts as the maximum (the first NaN is chosen, as
    :func:`fastconv.max_pool2d`; PyTorch's kernel keeps the last NaN's index).
    """
    check_array(x, "x", 4)
    oh, ow = adaptive_output_size(x.shape, output_size)
    x = contiguous(x)
    N, C, H, W = x.shape
    # pass 1, along W: the maximum of each row window and its column
    m = np.empty((N, C, H, ow), x.dtype)
    col = np.empty((N, C, H, ow), np.int64)
    for L, cells, starts in _by_length(W, ow):
        win = sliding_window_view(x, L, axis=3)[:, :, :, starts]       # (N, C, H, n, L)
        a = win.argmax(axis=-1)                                        # first max / NaN
        m[..., cells] = np.take_along_axis(win, a[..., None], -1)[..., 0]
        col[..., cells] = a + starts
    # pass 2, along H: the first row whose maximum is the window's (row-major first)
    y = np.empty((N, C, oh, ow), x.dtype)
    idx = np.empty((N, C, oh, ow), np.int64)
    for L, cells, starts in _by_length(H, oh):
        win = sliding_window_view(m, L, axis=2)[:, :, starts]          # (N, C, n, ow, L)
        a = win.argmax(axis=-1)
        y[:, :, cells] = np.take_along_axis(win, a[..., None], -1)[..., 0]
        row = a + starts[:, None]
        cwin = sliding_window_view(col, L, axis=2)[:, :, starts]
        idx[:, :, cells] = row * W + np.take_along_axis(cwin, a[..., None], -1)[..., 0]
    return (y, idx) if return_indices else y


@torch_keywords
def adaptive_max_pool2d_backward(dy, idx, x_shape):
    """Gradient of :func:`adaptive_max_pool2d`: dx (``x_shape``) with each dy added at its
    window's index (windows that chose the same element add up)."""
    check_array(dy, "dy", 4)
    x_shape = shape4(x_shape, "x_shape")
    if not isinstance(idx, np.ndarray):
        raise TypeError(f"idx must be a numpy.ndarray, got {type(idx).__name__}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"idx must be an integer array (int64), got dtype {idx.dtype}")
    check_shape(idx, dy.shape, "idx")
    N, C, H, W = x_shape
    oh, ow = adaptive_output_size(x_shape, dy.shape[2:])
    check_shape(dy, (N, C, oh, ow), "dy")
    dtype = native_dtype(dy.dtype)
    if N == 0:
        return np.zeros(x_shape, dtype)
    dx = np.empty(x_shape, dtype)
    geom = K.PoolGeom.scatter(N, C, H, W, oh, ow)
    try:
        K.maxpool2d_bwd(geom, contiguous(dy).reshape(-1),
                        contiguous(idx.astype(np.int64, copy=False)).reshape(-1),
                        dx.reshape(-1), _runtime.kernel_threads(dx.size + dy.size))
    except ValueError:
        raise ValueError(f"idx holds values outside [0, H*W) = [0, {H * W})") from None
    return dx
