"""The int8 operations on the native kernels: NumPy arrays in, NumPy arrays out.

The same functions, signatures and numbers as :mod:`fastconv.qreference` (the
integer oracle; see its docstring for the arithmetic), validated by the same
:mod:`fastconv._args.quant`, computed by csrc/qgemm.c and csrc/qconv.c: an int8
GEMM u8 x s8 -> s32 with the requantization epilogue fused (bias, ReLU,
uint8 output with a zero point, or float32), the convolution as the implicit
im2col of uint8 packed straight into that GEMM, and max pooling and ReLU on
uint8. The SIMD variant (AVX-512 VNNI, AVX2 or portable C) is chosen at run
time: :func:`qisa`, :func:`set_qisa`.

Weights are packed once into the kernels' panel layout (:class:`PackedWeights`,
the same layout for every ISA); pass one instead of an int8 array to skip the
packing on every call (the quantized layers do).

Inside an int8 network, 4-d activations travel in the C4 layout (N, ceil(C/4),
H, W, 4): the 4 bytes of a pixel are 4 consecutive channels, one k group of the
int8 GEMM, so a convolution reads its input in place instead of unfolding it
(:func:`qconv2d_c4`, :func:`qmax_pool2d_c4`, :func:`to_c4`, :func:`from_c4`).
The NCHW functions change layouts around the same kernels.
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K
from . import _args
from . import _runtime
from ._args import conv_params, pair, pool_params
from ._dispatch import conv_geom

__all__ = ["PackedWeights", "c4_weight", "qisa", "set_qisa", "quantize_u8", "dequantize_u8",
           "qgemm", "qlinear", "qconv2d", "qconv2d_c4", "to_c4", "from_c4", "quantize_u8_c4", "qim2col",
           "qmax_pool2d", "qmax_pool2d_c4", "qrelu"]

qisa = K.qisa
set_qisa = K.set_qisa

_KIND = K.QOUT_KINDS


def c4_weight(w):
    """Conv weights (K, Cg, R, S) int8 -> (K, ceil(Cg/4)*R*S*4) in the C4 kernels' k order
    (channel quad, r, s, channel % 4), zero for the channels beyond Cg."""
    K_, Cg, R, S = w.shape
    Cgq = -(-Cg // 4)
    wp = np.zeros((K_, Cgq * 4, R, S), np.int8)
    wp[:, :Cg] = w
    return np.ascontiguousarray(wp.reshape(K_, Cgq, 4, R, S).transpose(0, 1, 3, 4, 2)
                                .reshape(K_, Cgq * R * S * 4))


class PackedWeights:
    """int8 weights packed for the int8 kernels, with their row sums.

    ``w``: (M, K) for a GEMM / Linear layer, or (K, C/groups, R, S) for a
    convolution (in the C4 order, each group packed separately; with several
    groups whose C/groups is not a multiple of 4, one single-group PackedWeights
    per group, run one after the other: ``.parts``). ``.weight`` keeps the int8
    array (read-only view), ``.packed`` the panels, ``.rowsum`` the int32 row sums.
    """

    __slots__ = ("weight", "groups", "packed", "rowsum", "parts")

    def __init__(self, w, groups=1):
        _args.check_int8(w, "w")
        if w.ndim not in (2, 4):
            raise ValueError(f"w must be 2-d (M, K) or 4-d (K, C/groups, R, S), got shape {w.shape}")
        groups = int(groups)
        M = w.shape[0]
        if groups < 1 or M % groups:
            raise ValueError(f"w has {M} output channels, not divisible by groups={groups}")
        w = np.ascontiguousarray(w)
        view = w.view()
        view.flags.writeable = False
        self.weight, self.groups, self.parts = view, groups, None
        Mg = M // groups
        if w.ndim == 4 and groups > 1 and w.shape[1] % 4:
            self.parts = [PackedWeights(w[g * Mg:(g + 1) * Mg]) for g in range(groups)]
            self.packed = np.empty(0, np.uint8)
            self.rowsum = np.concatenate([p.rowsum for p in self.parts])
            return
        w2 = c4_weight(w) if w.ndim == 4 else w
        Kd = w2.shape[1]
        _args.check_k(Kd, "the reduction length (C/groups*R*S or in_features)")
        nb = K.qgemm_packed_bytes(Mg, Kd)
        packed = np.empty(groups * nb, np.uint8)
        rowsum = np.empty(M, np.int32)
        for g in range(groups):
            K.qgemm_pack_w(w2[g * Mg:(g + 1) * Mg], packed[g * nb:(g + 1) * nb],
                           rowsum[g * Mg:(g + 1) * Mg])
        self.packed, self.rowsum = packed, rowsum

    @property
    def shape(self):
        return self.weight.shape

    def __repr__(self):
        nb = self.packed.nbytes + sum(p.packed.nbytes for p in self.parts or ())
        return f"PackedWeights(shape={self.shape}, groups={self.groups}, {nb} bytes)"


def _packed(w, ndim, groups=1):
    if isinstance(w, PackedWeights):
        if w.weight.ndim != ndim:
            raise ValueError(f"w must be {ndim}-d, got packed weights of shape {w.shape}")
        if w.groups != groups:
            raise ValueError(f"w was packed for groups={w.groups}, the call has groups={groups}")
        return w
    _args.check_int8(w, "w", ndim)
    return PackedWeights(w, groups)


def _out(shape, e, out=None):
    return _dest(out, shape, e.out_dtype)


def _dest(out, shape, dtype):
    """``out`` (checked: that shape and dtype, C-contiguous, writeable) or a new array."""
    if out is None:
        return np.empty(shape, dtype)
    if (not isinstance(out, np.ndarray) or out.shape != tuple(shape) or out.dtype != dtype
            or not out.flags.c_contiguous or not out.flags.writeable):
        raise ValueError(f"out must be a writeable C-contiguous {np.dtype(dtype)} array of shape "
                         f"{tuple(shape)}, got {getattr(out, 'dtype', '')} {getattr(out, 'shape', type(out).__name__)}")
    return out


def _bytes(a):
    return a.reshape(-1).view(np.uint8)


def quantize_u8(x, scale, zero_point, axis=None, *, out=None):
    """float32 -> uint8: ``rint(clamp(x * (1/scale) + zero_point, 0, 255))`` (NaN -> 0),
    per tensor or per ``axis``. ``out``: an array to write (as in every function here)."""
    if not isinstance(x, np.ndarray) or x.dtype.newbyteorder("=") != np.float32:
        raise TypeError(f"x must be a float32 numpy.ndarray, got {getattr(x, 'dtype', type(x).__name__)}")
    N, C, L = _args.qparams_axis(x.shape, axis)
    s, z = _args.qparams(scale, zero_point, C)
    inv = (1.0 / s.astype(np.float64)).astype(np.float32)
    xc = np.require(x, np.float32, ["C_CONTIGUOUS", "ALIGNED"])
    q = _dest(out, x.shape, np.uint8)
    K.quantize_u8(N, C, L, xc.reshape(-1), inv, z, q.reshape(-1),
                  _runtime.kernel_threads(x.size))
    return q


def quantize_u8_c4(x, scale, zero_point, *, out=None):
    """float32 NCHW (N, C, H, W) -> uint8 in the C4 layout, per tensor: the same numbers as
    ``to_c4(quantize_u8(x, scale, zero_point), zero_point)`` in one pass."""
    if not isinstance(x, np.ndarray) or x.dtype.newbyteorder("=") != np.float32 or x.ndim != 4:
        raise TypeError(f"x must be a 4-d float32 numpy.ndarray, got {getattr(x, 'dtype', type(x).__name__)}")
    s, z = _args.qparams(scale, zero_point, 1)
    inv = np.float32(1.0 / np.float64(s[0]))
    N, C, H, W = x.shape
    y = _dest(out, (N, -(-C // 4), H, W, 4), np.uint8)
    K.quantize_u8_c4(N, C, H * W, np.require(x, np.float32, ["C_CONTIGUOUS", "ALIGNED"]).reshape(-1),
                     inv, int(z[0]), y.reshape(-1), _runtime.kernel_threads(x.size))
    return y


def dequantize_u8(q, scale, zero_point, axis=None):
    """uint8 -> float32: ``float32(q - zero_point) * scale``."""
    _args.check_uint8(q, "q")
    N, C, L = _args.qparams_axis(q.shape, axis)
    s, z = _args.qparams(scale, zero_point, C)
    y = np.empty(q.shape, np.float32)
    K.dequantize_u8(N, C, L, np.ascontiguousarray(q).reshape(-1), s, z, y.reshape(-1),
                    _runtime.kernel_threads(q.size))
    return y


def qgemm(w, a, a_zero=0, bias=None, mult=None, out="int32", out_zero=0, relu=False):
    """C (M, N) = epilogue(w (M, K) int8 . (a (K, N) uint8 - a_zero))."""
    pw = _packed(w, 2)
    _args.check_uint8(a, "a", 2)
    M, Kd = pw.shape
    if a.shape[0] != Kd:
        raise ValueError(f"a must have {Kd} rows (w is {pw.shape}), got shape {a.shape}")
    e = _args.epilogue(M, a_zero, bias, mult, out, out_zero, relu)
    c = _out((M, a.shape[1]), e)
    K.qgemm(pw.packed, pw.rowsum, np.ascontiguousarray(a), False, M, _KIND[e.out], e.relu,
            e.a_zero, e.out_zero, e.bias, e.mult, _bytes(c),
            _runtime.kernel_threads(M * a.shape[1] * max(Kd, 1)))
    return c


def qlinear(x, w, a_zero=0, bias=None, mult=None, out="int32", out_zero=0, relu=False, *,
            dest=None):
    """y (N, M) = epilogue((x (N, K) uint8 - a_zero) . w^T), w (M, K) int8; per feature.
    ``dest``: an array to write (``out`` names the output kind here)."""
    _args.check_uint8(x, "x", 2)
    pw = _packed(w, 2)
    M, Kd = pw.shape
    if x.shape[1] != Kd:
        raise ValueError(f"x has {x.shape[1]} features, w expects {Kd} (w is {pw.shape})")
    e = _args.epilogue(M, a_zero, bias, mult, out, out_zero, relu)
    y = _out((x.shape[0], M), e, dest)
    K.qlinear(np.ascontiguousarray(x), pw.packed, pw.rowsum, M, _KIND[e.out], e.relu, e.a_zero,
              e.out_zero, e.bias, e.mult, _bytes(y),
              _runtime.kernel_threads(M * x.shape[0] * max(Kd, 1)))
    return y


def qim2col(x, kernel_size, dilation=1, padding=0, stride=1, pad_value=0):
    """uint8 (N, C, H, W) -> (N, C*R*S, P*Q) (torch unfold's order), padding pad_value."""
    _args.check_uint8(x, "x", 4)
    R, S = pair(kernel_size, "kernel_size")
    p = conv_params(x.shape, (1, x.shape[1], R, S), stride, padding, dilation)
    pad_value = _args.zero_point(pad_value, "pad_value")
    cols = np.empty((p.N, p.C * R * S, p.P * p.Q), np.uint8)
    K.qim2col(conv_geom(p), np.ascontiguousarray(x).reshape(-1), pad_value, cols.reshape(-1),
              _runtime.kernel_threads(cols.size))
    return cols


def qconv2d(x, w, a_zero=0, bias=None, mult=None, out="int32", out_zero=0, relu=False,
            stride=1, padding=0, dilation=1, groups=1):
    """y (N, K, P, Q) = epilogue(conv(x - a_zero, w)), x uint8 (padding is a real zero:
    the level a_zero), w int8 (K, C/groups, R, S) or its PackedWeights."""
    _args.check_uint8(x, "x", 4)
    pw = _packed(w, 4, groups)
    p = conv_params(x.shape, pw.shape, stride, padding, dilation, groups)
    e = _args.epilogue(p.K, a_zero, bias, mult, out, out_zero, relu)
    y = _out(p.y_shape, e)
    if p.N == 0:
        return y
    if pw.parts is not None:        # groups whose channels do not fill whole quads: one by one
        Cg, Mg = p.C // p.groups, p.K // p.groups
        for g, part in enumerate(pw.parts):
            sl = slice(g * Mg, (g + 1) * Mg)
            y[:, sl] = qconv2d(np.ascontiguousarray(x[:, g * Cg:(g + 1) * Cg]), part, e.a_zero,
                               e.bias[sl] if e.bias.size else None,
                               e.mult[sl] if e.mult.size else None, e.out, e.out_zero, e.relu,
                               stride, padding, dilation, 1)
        return y
    work = p.N * p.K * p.P * p.Q * (p.C // p.groups) * p.R * p.S
    K.qconv2d(conv_geom(p), np.ascontiguousarray(x).reshape(-1), pw.packed, pw.rowsum,
              _KIND[e.out], e.relu, e.a_zero, e.out_zero, e.bias, e.mult, _bytes(y),
              _runtime.kernel_threads(work))
    return y


def to_c4(x, pad=0, *, out=None):
    """uint8 NCHW (N, C, H, W) -> the C4 layout (N, ceil(C/4), H, W, 4): channel c of a
    pixel at [..., c // 4, h, w, c % 4]; the channels beyond C hold ``pad``."""
    _args.check_uint8(x, "x", 4)
    pad = _args.zero_point(pad, "pad")
    N, C, H, W = x.shape
    y = _dest(out, (N, -(-C // 4), H, W, 4), np.uint8)
    K.qreorder_to_c4(N, C, H * W, np.ascontiguousarray(x).reshape(-1), pad, y.reshape(-1),
                     _runtime.kernel_threads(x.size))
    return y


def from_c4(x4, channels):
    """The C4 layout (N, ceil(C/4), H, W, 4) -> uint8 NCHW (N, C, H, W), C = ``channels``."""
    _args.check_c4(x4, "x", channels)
    N, _, H, W, _ = x4.shape
    y = np.empty((N, channels, H, W), np.uint8)
    K.qreorder_from_c4(N, channels, H * W, np.ascontiguousarray(x4).reshape(-1), y.reshape(-1),
                       _runtime.kernel_threads(y.size))
    return y


def qconv2d_c4(x4, w, a_zero=0, bias=None, mult=None, out="uint8", out_zero=0, relu=False,
               stride=1, padding=0, dilation=1, groups=1, out_layout="c4", *, dest=None):
    """:func:`qconv2d` on a C4 input (N, ceil(C/4), H, W, 4), C = w.shape[1] * groups: the
    fast path of the int8 layers (no layout change, the operand read in place). Output
    ``out_layout="c4"`` (uint8 only) or ``"nchw"``; ``dest``: an array to write."""
    pw = _packed(w, 4, groups)
    C = pw.shape[1] * int(groups)
    _args.check_c4(x4, "x", C)
    if out_layout not in ("c4", "nchw"):
        raise ValueError(f'out_layout must be "c4" or "nchw", got {out_layout!r}')
    N, _, H, W, _ = x4.shape
    p = conv_params((N, C, H, W), pw.shape, stride, padding, dilation, groups)
    e = _args.epilogue(p.K, a_zero, bias, mult, out, out_zero, relu)
    c4 = out_layout == "c4"
    if c4 and e.out != "uint8":
        raise ValueError('out_layout="c4" needs out="uint8"')
    if pw.parts is not None or (c4 and p.groups > 1 and (p.K // p.groups) % 4):
        y = qconv2d(from_c4(x4, C), pw, e.a_zero, e.bias if e.bias.size else None,
                    e.mult if e.mult.size else None, e.out, e.out_zero, e.relu, stride, padding,
                    dilation, groups)
        return to_c4(y, e.out_zero) if c4 else y
    y = _dest(dest, (N, -(-p.K // 4), p.P, p.Q, 4), np.uint8) if c4 else _out(p.y_shape, e, dest)
    if N == 0:
        return y
    work = p.N * p.K * p.P * p.Q * (p.C // p.groups) * p.R * p.S
    K.qconv2d_c4(conv_geom(p), np.ascontiguousarray(x4).reshape(-1), pw.packed, pw.rowsum,
                 _KIND[e.out], e.relu, e.a_zero, e.out_zero, e.bias, e.mult, c4, _bytes(y),
                 _runtime.kernel_threads(work))
    return y


def qmax_pool2d_c4(x4, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                   out=None):
    """:func:`qmax_pool2d` on a C4 image (N, Cq, H, W, 4) -> (N, Cq, P, Q, 4)."""
    _args.check_c4(x4, "x")
    N, Cq, H, W, _ = x4.shape
    p = pool_params((N, Cq, H, W), kernel_size, stride, padding, dilation, ceil_mode)
    y = _dest(out, (N, Cq, p.P, p.Q, 4), np.uint8)
    if N:
        geom = K.PoolGeom(N, Cq, H, W, p.kernel[0], p.kernel[1], p.stride[0], p.stride[1],
                          p.padding[0], p.padding[1], p.dilation[0], p.dilation[1],
                          p.ceil_mode, True)
        K.qmaxpool2d_c4(geom, np.ascontiguousarray(x4).reshape(-1), y.reshape(-1),
                        _runtime.kernel_threads(y.size * p.kernel[0] * p.kernel[1]))
    return y


def qmax_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling of uint8 x: the maximum of each window's taps inside the input
    (padding never wins; the scale and zero point carry over)."""
    _args.check_uint8(x, "x", 4)
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
    _args.check_uint8(x, "x")
    zp = _args.zero_point(zero_point, "zero_point")
    y = np.empty(x.shape, np.uint8)
    K.qrelu(np.ascontiguousarray(x).reshape(-1), zp, y.reshape(-1), _runtime.kernel_threads(x.size))
    return y
