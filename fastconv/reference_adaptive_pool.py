"""Plain NumPy reference of adaptive average and max pooling: one loop over the output
cells, each pooling its window ``x[..., h0:h1, w0:w1]`` directly (the oracle of
:mod:`fastconv.functional_adaptive_pool`)."""

from __future__ import annotations

import numpy as np

from ._args import (
    check_array,
    check_shape,
    native_dtype,
    shape4,
    torch_keywords,
)
from ._args import adaptive_output_size, adaptive_windows

__all__ = ["adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d",
           "adaptive_max_pool2d_backward"]


def _cells(H, W, oh, ow):
    hs, he = adaptive_windows(H, oh)
    ws, we = adaptive_windows(W, ow)
    for i in range(oh):
        for j in range(ow):
            yield i, j, int(hs[i]), int(he[i]), int(ws[j]), int(we[j])


@torch_keywords
def adaptive_avg_pool2d(x, output_size):
    """Adaptive average pooling (NumPy): y[..., i, j] = mean of the window of cell (i, j)."""
    check_array(x, "x", 4)
    oh, ow = adaptive_output_size(x.shape, output_size)
    N, C, H, W = x.shape
    y = np.empty((N, C, oh, ow), native_dtype(x.dtype))
    for i, j, h0, h1, w0, w1 in _cells(H, W, oh, ow):
        y[:, :, i, j] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / ((h1 - h0) * (w1 - w0))
    return y


@torch_keywords
def adaptive_avg_pool2d_backward(dy, x_shape):
    """Gradient of :func:`adaptive_avg_pool2d` (NumPy)."""
    check_array(dy, "dy", 4)
    x_shape = shape4(x_shape, "x_shape")
    oh, ow = adaptive_output_size(x_shape, dy.shape[2:])
    check_shape(dy, x_shape[:2] + (oh, ow), "dy")
    dx = np.zeros(x_shape, native_dtype(dy.dtype))
    for i, j, h0, h1, w0, w1 in _cells(x_shape[2], x_shape[3], oh, ow):
        dx[:, :, h0:h1, w0:w1] += (dy[:, :, i, j] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
    return dx


@torch_keywords
def adaptive_max_pool2d(x, output_size, return_indices=False):
    """Adaptive max pooling (NumPy): the first maximum of each window in row-major order,
    a NaN counting as the maximum (the first NaN wins)."""
    check_array(x, "x", 4)
    oh, ow = adaptive_output_size(x.shape, output_size)
    N, C, H, W = x.shape
    y = np.empty((N, C, oh, ow), native_dtype(x.dtype))
    idx = np.empty((N, C, oh, ow), np.int64)
    for i, j, h0, h1, w0, w1 in _cells(H, W, oh, ow):
        win = x[:, :, h0:h1, w0:w1].reshape(N, C, -1)
        nan = np.isnan(win)
        # argmax of (NaN first, then value): np.argmax already prefers the first NaN
        k = np.where(nan.any(axis=-1), nan.argmax(axis=-1), win.argmax(axis=-1))
        y[:, :, i, j] = np.take_along_axis(win, k[..., None], -1)[..., 0]
        idx[:, :, i, j] = (h0 + k // (w1 - w0)) * W + w0 + k % (w1 - w0)
    return (y, idx) if return_indices else y


@torch_keywords
def adaptive_max_pool2d_backward(dy, idx, x_shape):
    """Gradient of :func:`adaptive_max_pool2d` (NumPy): dy added at each index."""
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
    if idx.size and (idx.min() < 0 or idx.max() >= H * W):
        raise ValueError(f"idx holds values outside [0, H*W) = [0, {H * W})")
    dx = np.zeros((N, C, H * W), native_dtype(dy.dtype))
    n = np.arange(N)[:, None, None, None]
    c = np.arange(C)[None, :, None, None]
    np.add.at(dx, (n, c, idx), dy)
    return dx.reshape(x_shape)
