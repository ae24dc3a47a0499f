"""Prepared native calls: the layers' shortcut past the function API's per-call work.

A layer calls the same op on inputs of one shape again and again. The function
API (:func:`fastconv.conv2d`, :func:`fastconv.linear`) validates every argument,
works out the geometry and asks the algorithm policy on each call; that costs
tens of microseconds, which is most of a batch-1 forward pass on a small network.
A prepared call does that work once for one geometry and then only runs the
kernel:

``conv2d_prepared(x, w, b, stride, padding, dilation, groups)``
    ``fastconv.conv2d(x, w, b, stride, padding, dilation, groups)``, bit for bit,
    through the :class:`ConvCall` of its key (shapes, dtypes and the hashable
    hyper-parameters: a layer's normalised ones), made on the first call with that
    key and kept in a small process-wide table.
``ConvCall(x, w, b, stride, padding, dilation, groups)``
    validates exactly as :func:`fastconv.conv2d` does (the same checks, the same
    errors, from :mod:`fastconv._args`), and keeps the geometry, the kernels'
    geometry struct and ``algo="auto"``'s choice. ``call(x, w, b)`` on arrays of
    the shapes and dtypes it was made for returns what ``fastconv.conv2d(x, w, b,
    ...)`` returns, bit for bit: the same kernel, algorithm and thread count.
``max_pool2d_prepared(x, kernel_size, stride, padding, dilation, ceil_mode)``,
``avg_pool2d_prepared(x, kernel_size, stride, padding, ceil_mode, count_include_pad)``
    the same for :func:`fastconv.max_pool2d` (with ``return_indices=True``) and
    :func:`fastconv.avg_pool2d`: validated once per key, then the kernel.
``relu_inplace(x)``, ``clip_inplace(x, lo, hi)``
    ``numpy.maximum(x, 0, out=x)`` and ``numpy.clip(x, lo, hi, out=x)`` (the same bits)
    as one native pass over x (SIMD, threads on large arrays), for the activations that
    write over the output of the layer before them in eval mode; any other array
    (not C-contiguous, another dtype) goes to NumPy.
``gemv_linear(x, w, b)``
    ``y = x @ w.T + b`` for a few rows (at most :data:`GEMV_MAX_ROWS`) as one GEMV
    (the weight read once for all rows), as the compiled plan runs them. Not bitwise
    :func:`fastconv.linear` (another summation order); the layers use it for
    inference only (eval mode).

A prepared call holds no array of the caller's, only the geometry and choices made
from the key, so new weight values (an optimiser step, ``load_state_dict``) need
nothing redone, and a new shape or dtype is a new key. A call is made again when
the algorithm policy changed (``_kernels.set_isa``, a new tuning table: see
:meth:`ConvCall.current`). Layers use these only when
:func:`fastconv._backend.plain_native` is true.
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K
from . import _runtime
from ._args import (check_array, check_max_pool_windows, contiguous, linear_params, native_dtype,
                    pool_params)
from ._dispatch import (
    choose_algo,
    conv_geom,
    conv_work,
    finite_safe,
    policy_state,
    same_policy,
)
from .functional import _alloc, _conv_inputs, _pool_geom, _pool_work
from .functional_convpass import NATIVE, run_pass

__all__ = ["ConvCall", "conv2d_prepared", "max_pool2d_prepared", "avg_pool2d_prepared",
           "GEMV_MAX_ROWS", "gemv_linear", "gemv_ok", "relu_inplace", "clip_inplace",
           "native_inplace_ok"]

#: A fully connected layer with at most this many rows runs as a GEMV in inference.
GEMV_MAX_ROWS = 4
#: The prepared convolutions kept (a full table is emptied and refilled).
MAX_PREPARED = 512

_conv_calls = {}        # key -> ConvCall
_pool_calls = {}        # key -> (PoolParams, PoolGeom, work) of a pooling; linear_params of a GEMV


class ConvCall:
    """conv2d forward for one geometry, validated and dispatched once (module docstring)."""

    __slots__ = ("p", "dtype", "algo", "aid", "geom", "work", "no_bias", "state")

    def __init__(self, x, w, b, stride, padding, dilation, groups):
        # the function API's own validation: the same checks and messages
        p, dtype = _conv_inputs(x, w, b, stride, padding, dilation, groups, "auto")
        self.p = p
        self.dtype = dtype
        self.state = policy_state()
        self.algo = choose_algo("auto", p, False, dtype)
        self.aid = K.ALGO_ID.get(self.algo)
        self.geom = conv_geom(p)
        self.work = conv_work(p)
        self.no_bias = np.empty(0, dtype)

    def current(self):
        """False once the algorithm policy changed since this call was prepared."""
        return same_policy(self.state)

    def __call__(self, x, w, b):
        """y = conv2d(x, w, b) for arrays of the prepared shapes and dtype."""
        p = self.p
        y = _alloc(p.y_shape, self.dtype, "conv2d output")
        if p.N == 0:
            return y
        x, w = contiguous(x), contiguous(w)
        b = None if b is None else contiguous(b)
        nt = _runtime.conv_threads(self.work)
        algo = self.algo
        if algo == "winograd":      # the data decide, on every call, as in conv2d
            algo, = finite_safe((algo,), "auto", x, w)
        if algo not in NATIVE:
            run_pass("forward", algo, p, x, w, y, nt, bias=b)
        else:
            aid = self.aid if algo == self.algo else K.ALGO_ID[algo]
            K.conv2d_fwd(aid, self.geom, x, w, self.no_bias if b is None else b, y, nt)
        return y


def conv2d_prepared(x, w, b, stride, padding, dilation, groups):
    """``fastconv.conv2d(x, w, b, stride, padding, dilation, groups)`` (bit for bit) through
    the prepared call of its key; stride, padding and dilation must be hashable."""
    key = (x.shape, x.dtype, w.shape, w.dtype, None if b is None else (b.shape, b.dtype),
           stride, padding, dilation, groups)
    call = _conv_calls.get(key)
    if call is None or not call.current():
        call = _remember(_conv_calls, key, ConvCall(x, w, b, stride, padding, dilation, groups))
    return call(x, w, b)


def _remember(table, key, value):
    if len(table) >= MAX_PREPARED:
        table.clear()
    table[key] = value
    return value


def max_pool2d_prepared(x, kernel_size, stride, padding, dilation, ceil_mode, indices=True):
    """``fastconv.max_pool2d(x, ..., return_indices=True)`` (the same arrays) with its
    validation done once per key (x's shape and dtype, the hashable hyper-parameters).
    ``indices=False``: (y, None), the same y without computing the indices."""
    key = (x.shape, x.dtype, kernel_size, stride, padding, dilation, ceil_mode)
    hit = _pool_calls.get(key)
    if hit is None:
        check_array(x, "x", 4)
        p = pool_params(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
        check_max_pool_windows(p)
        hit = _remember(_pool_calls, key, (p, _pool_geom(p), _pool_work(p), native_dtype(x.dtype)))
    p, geom, work, dtype = hit
    y = _alloc(p.y_shape, dtype, "max_pool2d output")
    if not indices:
        if p.N:
            K.maxpool2d_fwd_values(geom, contiguous(x), y, _runtime.pool_threads(work))
        return y, None
    idx = _alloc(p.y_shape, np.int64, "max_pool2d indices")
    if p.N:
        K.maxpool2d_fwd(geom, contiguous(x).reshape(-1), y.reshape(-1), idx.reshape(-1),
                        _runtime.pool_threads(work))
    return y, idx


def avg_pool2d_prepared(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    """``fastconv.avg_pool2d(x, ...)`` (the same array) with its validation done once per key."""
    key = ("avg", x.shape, x.dtype, kernel_size, stride, padding, ceil_mode, count_include_pad)
    hit = _pool_calls.get(key)
    if hit is None:
        check_array(x, "x", 4)
        p = pool_params(x.shape, kernel_size, stride, padding, 1, ceil_mode)
        hit = _remember(_pool_calls, key, (p, _pool_geom(p, bool(count_include_pad)), _pool_work(p)))
    p, geom, work = hit
    y = _alloc(p.y_shape, native_dtype(x.dtype), "avg_pool2d output")
    if p.N:
        K.avgpool2d_fwd(geom, contiguous(x).reshape(-1), y.reshape(-1), _runtime.pool_threads(work))
    return y


def gemv_ok(n_rows):
    """Whether :func:`gemv_linear` serves ``n_rows`` rows here (few rows, and a SIMD
    kernel: without one the function API's NumPy path is the fast one)."""
    return n_rows <= GEMV_MAX_ROWS and K.isa() != "generic"


def gemv_linear(x, w, b=None):
    """y (N, out) = x (N, in) @ w.T (out, in) + b, as one GEMV (validated as
    :func:`fastconv.linear`, once per key; not bitwise the same as it: inference only)."""
    key = ("gemv", x.shape, x.dtype, w.shape, w.dtype, None if b is None else (b.shape, b.dtype))
    hit = _pool_calls.get(key)
    if hit is None:
        hit = _remember(_pool_calls, key, linear_params(x, w, b))
    dtype, N, fin, fout = hit
    y = _alloc((N, fout), dtype, "linear output")
    if N == 0 or fout == 0:
        return y
    if fin == 0:
        y[...] = 0 if b is None else b
        return y
    bb = np.empty(0, dtype) if b is None else contiguous(b)
    K.gemv(contiguous(w), contiguous(x), bb, y, _runtime.kernel_threads(N * fin * fout))
    return y


_INPLACE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))    # native byte order


def native_inplace_ok(x):
    """x can be written in place by the native kernels: a writeable, C-contiguous float32 or
    float64 array in native byte order (the in-place activations here, and optim.SGD's
    fused update)."""
    f = x.flags
    return x.dtype in _INPLACE_DTYPES and f.c_contiguous and f.writeable


def relu_inplace(x):
    """x = max(x, 0) written over x, with ``numpy.maximum(x, 0, out=x)``'s bits (-0.0 ->
    +0.0, NaN kept); returns x. NumPy does it for an array the kernel cannot take."""
    if not native_inplace_ok(x):
        return np.maximum(x, x.dtype.type(0), out=x)
    K.relu_inplace(x, _runtime.kernel_threads(x.size))
    return x


def clip_inplace(x, lo, hi):
    """x = clip(x, lo, hi) written over x, with ``numpy.clip(x, lo, hi, out=x)``'s bits
    (NaN kept; lo and hi are x's dtype's values, lo <= hi, neither NaN); returns x.
    NumPy does it for an array the kernel cannot take, or for bounds it does not."""
    t = x.dtype.type
    if not (native_inplace_ok(x) and t(lo) <= t(hi)):
        return np.clip(x, t(lo), t(hi), out=x)
    K.clip_inplace(x, float(t(lo)), float(t(hi)), _runtime.kernel_threads(x.size))
    return x
