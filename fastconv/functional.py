"""The native function API: NumPy arrays in, NumPy arrays out.

Each function validates its arguments in plain Python (shared with
:mod:`fastconv.reference` through :mod:`fastconv._args`), makes its inputs
C-contiguous in native byte order when they are not (inputs are never written
to), allocates the outputs, chooses an algorithm and calls the C kernels
through :mod:`fastconv._kernels`, which release the GIL.

Convolution has two algorithms:

``"im2col"``
    the input is unfolded into columns a bounded chunk of images at a time
    (the workspace never holds the whole batch: see
    :mod:`fastconv.functional_convpass`) and multiplied
    by the weight matrix with NumPy's ``matmul`` (its BLAS);
``"direct"``
    our own C loops over the kernel window, with no workspace at all;
``"gemm"``
    all in C: implicit im2col packed straight into fastconv's own SIMD GEMM
    (csrc/gemm.c, csrc/conv_gemm.c), with a bounded per-thread workspace;
``"winograd"``
    3x3 kernels with stride 1 and dilation 1 only: Winograd F(4x4, 3x3)
    (csrc/winograd.c) for the forward pass and both gradients, 4x fewer
    multiplications than the direct method.

``algo="auto"`` picks one per shape and pass (the policy lives in
:mod:`fastconv._dispatch`: ``choose_algo``); an explicit ``algo`` always wins.
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K
from . import _runtime
from .functional_convpass import NATIVE, run_pass
from ._args import (
    ALGOS,  # re-exported: fastconv.functional.ALGOS stays importable
    check_algo,
    check_array,
    check_max_pool_windows,
    check_shape,
    common_dtype,
    contiguous,
    fold_params,
    linear_params,
    unfold_params,
    native_dtype,
    conv_params,
    pool_params,
    shape4,
    torch_keywords,
)
from ._dispatch import (
    check_winograd as _check_winograd,
    choose_algo as _choose_algo,
    conv_geom as _geom,
    conv_work as _conv_work,
    finite_safe as _finite_safe,
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

def _flat(a):
    return a.reshape(-1)


def _pool_work(p):
    return p.N * p.C * p.P * p.Q * p.kernel[0] * p.kernel[1]


def _alloc(shape, dtype, what):
    try:
        return np.empty(shape, dtype=dtype)
    except (MemoryError, ValueError) as e:
        nbytes = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
        raise MemoryError(f"cannot allocate {what} of shape {tuple(shape)} ({nbytes} bytes)") from e


def _conv_inputs(x, w, b, stride, padding, dilation, groups, algo):
    check_array(x, "x", 4)
    check_array(w, "w", 4)
    if b is not None:
        check_array(b, "b", 1)
    dtype = common_dtype(x=x, w=w, b=b)
    check_algo(algo)
    p = conv_params(x.shape, w.shape, stride, padding, dilation, groups)
    if b is not None:
        check_shape(b, (p.K,), "b")
    if algo == "winograd":
        _check_winograd(p)
    return p, dtype


@torch_keywords
def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algo="auto"):
    """2-d convolution (cross-correlation, as PyTorch), NCHW.

    x: (N, C, H, W); w: (K, C/groups, R, S); b: (K,) or None.
    Returns y: (N, K, P, Q) with P = floor((H + 2p - d(R-1) - 1)/s) + 1 (likewise Q).
    ``padding`` is an int, a pair, ``"valid"`` or ``"same"`` (stride 1 only).
    ``algo``: ``"auto"``, ``"im2col"``, ``"direct"``, ``"gemm"`` or ``"winograd"``
    (3x3, stride 1, dilation 1 only).
    """
    p, dtype = _conv_inputs(x, w, b, stride, padding, dilation, groups, algo)
    y = _alloc(p.y_shape, dtype, "conv2d output")
    if p.N == 0:
        return y
    x, w = contiguous(x), contiguous(w)
    b = contiguous(b) if b is not None else None
    nt = _runtime.conv_threads(_conv_work(p))
    chosen, = _finite_safe((_choose_algo(algo, p, False, dtype),), algo, x, w)
    run_pass("forward", chosen, p, x, w, y, nt, bias=b)
    return y


@torch_keywords
def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1,
                    need_dx=True, need_db=True, algo="auto"):
    """Gradients of :func:`conv2d` with respect to x, w and b.

    dy: (N, K, P, Q), the gradient of the loss with respect to y.
    Returns (dx, dw, db): dx (N, C, H, W) or None when ``need_dx`` is false,
    dw (K, C/groups, R, S), db (K,) or None when ``need_db`` is false.
    """
    check_array(dy, "dy", 4)
    p, dtype = _conv_inputs(x, w, None, stride, padding, dilation, groups, algo)
    common_dtype(x=x, dy=dy)
    check_shape(dy, p.y_shape, "dy")
    dw = np.zeros(p.w_shape, dtype)
    db = np.zeros(p.K, dtype) if need_db else None
    dx = _alloc(p.x_shape, dtype, "dx") if need_dx else None
    if p.N == 0:
        if dx is not None:
            dx[...] = 0
        return dx, dw, db
    dy, x, w = contiguous(dy), contiguous(x), contiguous(w)
    nt = _runtime.conv_threads(_conv_work(p))
    # Each pass has its own choice (they differ on few-channel first layers).
    chosen_w, chosen_d = _finite_safe((_choose_algo(algo, p, "weight", dtype),
                                       _choose_algo(algo, p, "data", dtype)), algo, dy, x, w)
    if chosen_w in NATIVE:  # the C weight pass also sums db
        dbb = db if db is not None else np.empty(0, dtype)
        K.conv2d_bwd_weight(K.ALGO_ID[chosen_w], _geom(p), _flat(dy), _flat(x), _flat(dw), dbb, nt)
    else:
        run_pass("weight", chosen_w, p, dy, x, dw, nt)
        if db is not None:
            K.bias_grad(p.N, p.K, p.P * p.Q, _flat(dy), db, nt)
    if dx is not None:
        run_pass("data", chosen_d, p, dy, w, dx, nt)
    return dx, dw, db


def _pool_geom(p, count_include_pad=True):
    return K.PoolGeom(p.N, p.C, p.H, p.W, p.kernel[0], p.kernel[1], p.stride[0], p.stride[1],
                      p.padding[0], p.padding[1], p.dilation[0], p.dilation[1],
                      p.ceil_mode, count_include_pad)


@torch_keywords
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-d max pooling, NCHW, as PyTorch.

    Returns y (N, C, P, Q), and with ``return_indices`` also idx: int64 (N, C, P, Q), the flat
    index h*W + w, within each (n, c) plane, of the first maximum of each window. NaN
    propagates (it counts as the maximum). Without ``return_indices`` no indices are
    computed (the same y, faster).
    """
    check_array(x, "x", 4)
    p = pool_params(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    check_max_pool_windows(p)
    y = _alloc(p.y_shape, native_dtype(x.dtype), "max_pool2d output")
    nt = _runtime.pool_threads(_pool_work(p))
    if not return_indices:            # the values only: no index stores
        if p.N:
            K.maxpool2d_fwd_values(_pool_geom(p), _flat(contiguous(x)), _flat(y), nt)
        return y
    idx = _alloc(p.y_shape, np.int64, "max_pool2d indices")
    if p.N:
        x = contiguous(x)
        K.maxpool2d_fwd(_pool_geom(p), _flat(x), _flat(y), _flat(idx), nt)
    return y, idx


def _check_indices(idx, dy):
    if not isinstance(idx, np.ndarray):
        raise TypeError(f"idx must be a numpy.ndarray, got {type(idx).__name__}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"idx must be an integer array (int64), got dtype {idx.dtype}")
    check_shape(idx, dy.shape, "idx")
    return contiguous(idx.astype(np.int64, copy=False))


@torch_keywords
def max_pool2d_backward(dy, idx, x_shape):
    """Gradient of :func:`max_pool2d`: dx (x_shape) with dy scattered to the argmax indices."""
    check_array(dy, "dy", 4)
    x_shape = shape4(x_shape, "x_shape")
    idx = _check_indices(idx, dy)
    N, C, H, W = x_shape
    if dy.shape[:2] != (N, C):
        raise ValueError(f"dy has shape {dy.shape}, which does not match x_shape {x_shape} in (N, C)")
    if H < 1 or W < 1 or C < 1:
        raise ValueError(f"x_shape must have C, H and W >= 1, got {x_shape}")
    if N == 0 or dy.size == 0:
        return np.zeros(x_shape, native_dtype(dy.dtype))
    # The kernel zeroes dx itself, and checks every index before it writes anything
    # (one pass in C rather than idx.min() and idx.max() here).
    dx = _alloc(x_shape, native_dtype(dy.dtype), "dx")
    # The scatter needs only the plane sizes: (H, W) of dx and (P, Q) of dy.
    geom = K.PoolGeom.scatter(N, C, H, W, dy.shape[2], dy.shape[3])
    try:
        K.maxpool2d_bwd(geom, _flat(contiguous(dy)), _flat(idx), _flat(dx),
                        _runtime.kernel_threads(dx.size + dy.size))
    except ValueError:
        raise ValueError(f"idx holds values outside [0, H*W) = [0, {H * W})") from None
    return dx


@torch_keywords
def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """2-d average pooling, NCHW, as PyTorch (divisor rules of ``count_include_pad``)."""
    check_array(x, "x", 4)
    p = pool_params(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    y = _alloc(p.y_shape, native_dtype(x.dtype), "avg_pool2d output")
    if p.N:
        x = contiguous(x)
        K.avgpool2d_fwd(_pool_geom(p, bool(count_include_pad)), _flat(x), _flat(y),
                        _runtime.pool_threads(_pool_work(p)))
    return y


@torch_keywords
def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    """Gradient of :func:`avg_pool2d`: dx of shape ``x_shape``."""
    check_array(dy, "dy", 4)
    x_shape = shape4(x_shape, "x_shape")
    p = pool_params(x_shape, kernel_size, stride, padding, 1, ceil_mode)
    check_shape(dy, p.y_shape, "dy")
    dx = _alloc(x_shape, native_dtype(dy.dtype), "dx")
    if p.N == 0:
        return dx
    K.avgpool2d_bwd(_pool_geom(p, bool(count_include_pad)), _flat(contiguous(dy)), _flat(dx),
                    _runtime.kernel_threads(_pool_work(p)))
    return dx


@torch_keywords
def im2col(x, kernel_size, dilation=1, padding=0, stride=1):
    """Unfold sliding windows: x (N, C, H, W) -> cols (N, C*R*S, P*Q), as torch's ``unfold``.

    Row ``c*R*S + r*S + s`` and column ``p*Q + q`` hold x[n, c, p*sh - ph + r*dh, q*sw - pw + s*dw]
    (zero where that falls in the padding).
    """
    check_array(x, "x", 4)
    p = unfold_params(x.shape, kernel_size, stride, padding, dilation)
    cols = _alloc((p.N, p.C * p.R * p.S, p.P * p.Q), native_dtype(x.dtype), "im2col output")
    if p.N:
        K.im2col(_geom(p), _flat(contiguous(x)), _flat(cols), _runtime.kernel_threads(cols.size))
    return cols


@torch_keywords
def col2im(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Fold columns back into images, summing overlaps, as torch's ``fold``.

    cols: (N, C*R*S, P*Q); output_size: (H, W). Returns x (N, C, H, W).
    """
    check_array(cols, "cols", 3)
    p = fold_params(cols.shape, output_size, kernel_size, stride, padding, dilation)
    N, C, H, W = p.x_shape
    x = _alloc((N, C, H, W), native_dtype(cols.dtype), "col2im output")
    if N:
        K.col2im(_geom(p), _flat(contiguous(cols)), _flat(x), _runtime.kernel_threads(cols.size))
    return x


@torch_keywords
def relu(x):
    """Rectified linear unit, max(x, 0), elementwise; NaN propagates."""
    check_array(x, "x")
    y = _alloc(x.shape, native_dtype(x.dtype), "relu output")
    K.relu_fwd(_flat(contiguous(x)), _flat(y), _runtime.kernel_threads(x.size))
    return y


@torch_keywords
def relu_backward(dy, x):
    """Gradient of :func:`relu`: dy where x > 0, else 0."""
    check_array(dy, "dy")
    check_array(x, "x")
    common_dtype(dy=dy, x=x)
    check_shape(dy, x.shape, "dy")
    dx = _alloc(x.shape, native_dtype(x.dtype), "relu_backward output")
    K.relu_bwd(_flat(contiguous(dy)), _flat(contiguous(x)), _flat(dx), _runtime.kernel_threads(x.size))
    return dx


def _matmul(trans_a, trans_b, a, b, c, M, N, Kd, beta=0.0):
    """c (M x N) = op(a) @ op(b) + beta c with fastconv's own GEMM (op = transpose when
    ``trans_*``; a, b, c C-contiguous, native order). The GEMM runs on fastconv's OpenMP
    threads, so a training step never wakes NumPy's BLAS thread pool, whose spinning
    threads would compete with ours for the cores. On a CPU without a SIMD kernel
    (``isa() == "generic"``) NumPy's BLAS is much faster, so it is used instead."""
    if K.isa() == "generic":
        res = np.matmul(a.T if trans_a else a, b.T if trans_b else b)
        if beta:
            c += res
        else:
            c[...] = res
        return
    lda = a.shape[1]
    ldb = b.shape[1]
    K.gemm(trans_a, trans_b, M, N, Kd, _flat(a), lda, _flat(b), ldb, beta, _flat(c), N,
           _runtime.kernel_threads(M * N * Kd))


@torch_keywords
def linear(x, w, b=None):
    """Fully connected layer, as ``torch.nn.functional.linear``: ``y = x @ w.T + b``.

    x: (N, in_features); w: (out_features, in_features); b: (out_features,) or None.
    Returns y: (N, out_features).
    """
    dtype, N, fin, fout = linear_params(x, w, b)
    y = _alloc((N, fout), dtype, "linear output")
    if N == 0 or fout == 0:
        return y
    x, w = contiguous(x), contiguous(w)
    _matmul(False, True, x, w, y, N, fout, fin)
    if b is not None:
        y += contiguous(b)
    return y


@torch_keywords
def linear_backward(dy, x, w, need_dx=True, need_db=True):
    """Gradients of :func:`linear` with respect to x, w and b.

    dy: (N, out_features), the gradient of the loss with respect to y.
    Returns (dx, dw, db): dx = dy @ w (N, in_features) or None when ``need_dx`` is false,
    dw = dy.T @ x (out_features, in_features), db = dy summed over N (out_features,) or
    None when ``need_db`` is false.
    """
    dtype, N, fin, fout = linear_params(x, w, None, dy)
    dy, x, w = contiguous(dy), contiguous(x), contiguous(w)
    dw = _alloc((fout, fin), dtype, "dw")
    dx = _alloc((N, fin), dtype, "dx") if need_dx else None
    # K = N = 0 makes the GEMM write zeros (an empty sum), as NumPy's matmul does.
    if fout and fin:
        _matmul(True, False, dy, x, dw, fout, fin, N)
    if dx is not None and N and fin:
        _matmul(False, False, dy, w, dx, N, fin, fout)
    db = dy.sum(axis=0, dtype=dtype) if need_db else None
    return dx, dw, db
from .functional_conv_transpose import conv_transpose2d, conv_transpose2d_backward  # noqa: E402,F401
from .functional_adaptive_pool import adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_max_pool2d, adaptive_max_pool2d_backward  # noqa: E402,F401,E501
from .functional_lp_pool import lp_pool2d, lp_pool2d_backward  # noqa: E402,F401
from .functional_conv1d import conv1d, conv1d_backward  # noqa: E402,F401
from .functional_deform import deform_conv2d, deform_conv2d_backward  # noqa: E402,F401
from .functional_batchnorm import batch_norm_affine, batch_norm_backward, batch_norm_train  # noqa: E402,F401
