"""The int8 operations on the native kernels: NumPy arrays in, NumPy arrays out.

The same functions, signatures and numbers as :mod:`fastconv.qreference` (the
integer oracle; see its docstring for the arithmetic), validated by the same
:mod:`fastconv._qargs`, computed by csrc/qgemm.c and csrc/qconv.c: an int8
GEMM u8 x s8 -> s32 with the requantization epilogue fused (bias, ReLU,
uint8 output with a zero point, or float32), the convolution as the implicit
im2col of uint8 packed straight into that GEMM, and max pooling and ReLU on
uint8. The SIMD variant (AVX-512 VNNI, AVX2 or portable C) is chosen at run
time: :func:`qisa`, :func:`set_qisa`.

Weights are packed once into the kernels' panel layout (:class:`PackedWeights`,
the same layout for every ISA); pass one instead of an int8 array to skip the
packing on every call (the quantized layers do).
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K
from . import _qargs
from . import _runtime
from ._args import conv_params, pair, pool_params
from ._dispatch import conv_geom

__all__ = ["PackedWeights", "qisa", "set_qisa", "quantize_u8", "dequantize_u8", "qgemm",
           "qlinear", "qconv2d", "qim2col", "qmax_pool2d", "qrelu"]

qisa = K.qisa
set_qisa = K.set_qisa

_KIND = K.QOUT_KINDS


class PackedWeights:
    """int8 weights packed for the int8 kernels, with their row sums.

    ``w``: (M, K) for a GEMM / Linear layer, or (K, C/groups, R, S) for a
    convolution (each group packed separately). ``.weight`` keeps the int8
    array (read-only view), ``.packed`` the panels, ``.rowsum`` the int32 row sums.
    """

    __slots__ = ("weight", "groups", "packed", "rowsum")

    def __init__(self, w, groups=1):
        _qargs.check_int8(w, "w")
        if w.ndim not in (2, 4):
            raise ValueError(f"w must be 2-d (M, K) or 4-d (K, C/groups, R, S), got shape {w.shape}")
        groups = int(groups)
        M = w.shape[0]
        if groups < 1 or M % groups:
            raise ValueError(f"w has {M} output channels, not divisible by groups={groups}")
        w = np.ascontiguousarray(w)
        Mg, Kd = M // groups, int(np.prod(w.shape[1:], dtype=np.int64))
        _qargs.check_k(Kd, "the reduction length (C/groups*R*S or in_features)")
        nb = K.qgemm_packed_bytes(Mg, Kd)
        packed = np.empty(groups * nb, np.uint8)
        rowsum = np.empty(M, np.int32)
        w2 = w.reshape(M, Kd)
        for g in range(groups):
            K.qgemm_pack_w(w2[g * Mg:(g + 1) * Mg], packed[g * nb:(g + 1) * nb],
                           rowsum[g * Mg:(g + 1) * Mg])
        view = w.view()
        view.flags.writeable = False
        self.weight, self.groups, self.packed, self.rowsum = view, groups, packed, rowsum

    @property
    def shape(self):
        return self.weight.shape

    def __repr__(self):
        return f"PackedWeights(shape={self.shape}, groups={self.groups}, {self.packed.nbytes} bytes)"


def _packed(w, ndim, groups=1):
    if isinstance(w, PackedWeights):
        if w.weight.ndim != ndim:
            raise ValueError(f"w must be {ndim}-d, got packed weights of shape {w.shape}")
        if w.groups != groups:
            raise ValueError(f"w was packed for groups={w.groups}, the call has groups={groups}")
        return w
    _qargs.check_int8(w, "w", ndim)
    return PackedWeights(w, groups)


def _out(shape, e):
    return np.empty(shape, e.out_dtype)


def _bytes(a):
    return a.reshape(-1).view(np.uint8)


def quantize_u8(x, scale, zero_point, axis=None):
    """float32 -> uint8: ``rint(clamp(x * (1/scale) + zero_point, 0, 255))`` (NaN -> 0),
    per tensor or per ``axis``."""
    if not isinstance(x, np.ndarray) or x.dtype.newbyteorder("=") != np.float32:
        raise TypeError(f"x must be a float32 numpy.ndarray, got {getattr(x, 'dtype', type(x).__name__)}")
    N, C, L = _qargs.qparams_axis(x.shape, axis)
    s, z = _qargs.qparams(scale, zero_point, C)
    inv = (1.0 / s.astype(np.float64)).astype(np.float32)
    xc = np.require(x, np.float32, ["C_CONTIGUOUS", "ALIGNED"])
    q = np.empty(x.shape, np.uint8)
    K.quantize_u8(N, C, L, xc.reshape(-1), inv, z, q.reshape(-1),
                  _runtime.kernel_threads(x.size))
    return q


def dequantize_u8(q, scale, zero_point, axis=None):
    """uint8 -> float32: ``float32(q - zero_point) * scale``."""
    _qargs.check_uint8(q, "q")
    N, C, L = _qargs.qparams_axis(q.shape, axis)
    s, z = _qargs.qparams(scale, zero_point, C)
    y = np.empty(q.shape, np.float32)
    K.dequantize_u8(N, C, L, np.ascontiguousarray(q).reshape(-1), s, z, y.reshape(-1),
                    _runtime.kernel_threads(q.size))
    return y


def qgemm(w, a, a_zero=0, bias=None, mult=None, out="int32", out_zero=0, relu=False):
    """C (M, N) = epilogue(w (M, K) int8 . (a (K, N) uint8 - a_zero))."""
    pw = _packed(w, 2)
    _qargs.check_uint8(a, "a", 2)
    M, Kd = pw.shape
    if a.shape[0] != Kd:
        raise ValueError(f"a must have {Kd} rows (w is {pw.shape}), got shape {a.shape}")
    e = _qargs.epilogue(M, a_zero, bias, mult, out, out_zero, relu)
    c = _out((M, a.shape[1]), e)
    K.qgemm(pw.packed, pw.rowsum, np.ascontiguousarray(a), False, M, _KIND[e.out], e.relu,
            e.a_zero, e.out_zero, e.bias, e.mult, _bytes(c),
            _runtime.kernel_threads(M * a.shape[1] * max(Kd, 1)))
    return c


def qlinear(x, w, a_zero=0, bias=None, mult=None, out="int32", out_zero=0, relu=False):
    """y (N, M) = epilogue((x (N, K) uint8 - a_zero) . w^T), w (M, K) int8; per feature."""
    _qargs.check_uint8(x, "x", 2)
    pw = _packed(w, 2)
    M, Kd = pw.shape
    if x.shape[1] != Kd:
        raise ValueError(f"x has {x.shape[1]} features, w expects {Kd} (w is {pw.shape})")
    e = _qargs.epilogue(M, a_zero, bias, mult, out, out_zero, relu)
    y = _out((x.shape[0], M), e)
    K.qlinear(np.ascontiguousarray(x), pw.packed, pw.rowsum, M, _KIND[e.out], e.relu, e.a_zero,
              e.out_zero, e.bias, e.mult, _bytes(y),
              _runtime.kernel_threads(M * x.shape[0] * max(Kd, 1)))
    return y


def qim2col(x, kernel_size, dilation=1, padding=0, stride=1, pad_value=0):
    """uint8 (N, C, H, W) -> (N, C*R*S, P*Q) (torch unfold's order), padding pad_value."""
    _qargs.check_uint8(x, "x", 4)
    R, S = pair(kernel_size, "kernel_size")
    p = conv_params(x.shape, (1, x.shape[1], R, S), stride, padding, dilation)
    pad_value = _qargs.zero_point(pad_value, "pad_value")
    cols = np.empty((p.N, p.C * R * S, p.P * p.Q), np.uint8)
    K.qim2col(conv_geom(p), np.ascontiguousarray(x).reshape(-1), pad_value, cols.reshape(-1),
              _runtime.kernel_threads(cols.size))
    return cols


def qconv2d(x, w, a_zero=0, bias=None, mult=None, out="int32", out_zero=0, relu=False,
            stride=1, padding=0, dilation=1, groups=1):
    """y (N, K, P, Q) = epilogue(conv(x - a_zero, w)), x uint8 (padding is a real zero:
    the level a_zero), w int8 (K, C/groups, R, S) or its PackedWeights."""
    _qargs.check_uint8(x, "x", 4)
    pw = _packed(w, 4, groups)
    p = conv_params(x.shape, pw.shape, stride, padding, dilation, groups)
    e = _qargs.epilogue(p.K, a_zero, bias, mult, out, out_zero, relu)
    y = _out(p.y_shape, e)
    if p.N == 0:
        return y
    work = p.N * p.K * p.P * p.Q * (p.C // p.groups) * p.R * p.S
    K.qconv2d(conv_geom(p), np.ascontiguousarray(x).reshape(-1), pw.packed, pw.rowsum,
              _KIND[e.out], e.relu, e.a_zero, e.out_zero, e.bias, e.mult, _bytes(y),
              _runtime.kernel_threads(work))
    return y


def qmax_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling of uint8 x: the maximum of each window's taps inside the input
    (padding never wins; the scale and zero point carry over)."""
    _qargs.check_uint8(x, "x", 4)
    p = pool_params(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    y = np.empty(p.y_shape, np.uint8)
    if p.N:
        geom = K.PoolGeom(p.N, p.C, p.H, p.W, p.kernel[0], p.kernel[1], p.stride[0], p.stride[1],
                          p.padding[0], p.padding[1], p.dilation[0], p.dilation[1],
                          p.ceil_mode, True)
        K.qmaxpool2d(geom, np.ascontiguousarray(x).reshape(-1), y.reshape(-1),
                     _runtime.kernel_threads(y.size * p.kernel[0] * p.kernel[1]))
    return y


def qrelu(x, zero_point):
    """ReLU of uint8 x with zero point zp: max(x, zp)."""
    _qargs.check_uint8(x, "x")
    zp = _qargs.zero_point(zero_point, "zero_point")
    y = np.empty(x.shape, np.uint8)
    K.qrelu(np.ascontiguousarray(x).reshape(-1), zp, y.reshape(-1), _runtime.kernel_threads(x.size))
    return y
