"""The int8 operations in plain NumPy: the integer oracle of the int8 kernels.

Re-exported by :mod:`fastconv.reference` (``fastconv.reference.qconv2d`` ...).
Integer sums are computed exactly in int64; the epilogue is the kernels'
sequence of float32 operations (one IEEE rounding each, no fused multiply-add),
so the native kernels of every ISA must match these functions bit for bit.

Numbers: activations ``x`` uint8 with zero point ``a_zero`` (real value
``scale * (x - a_zero)``), weights int8 (zero point 0), accumulator

    acc[i, j] = sum_k w[i, k] * (x[k, j] - a_zero) + bias[i]          (int32)

and the epilogue (``out=``):

* ``"int32"``: ``acc``;
* ``"uint8"``: ``v = float32(acc) * mult[i]``, clamped to ``[lo, 255 - out_zero]``
  (``lo = -out_zero``, or 0 with ``relu``), rounded half to even, plus
  ``out_zero``;
* ``"float32"``: ``float32(acc) * mult[i]``, then ``max(., 0)`` with ``relu``.
"""

from __future__ import annotations

import numpy as np

from . import _args
from ._args import conv_params, pair, pool_params

__all__ = ["quantize_u8", "dequantize_u8", "qgemm", "qlinear", "qconv2d", "qim2col",
           "qmax_pool2d", "qrelu", "to_c4", "from_c4", "qconv2d_c4", "qmax_pool2d_c4"]


def _f32(v):
    return np.float32(v)


def quantize_u8(x, scale, zero_point, axis=None):
    """float32 -> uint8: ``rint(clamp(x * (1/scale) + zero_point, 0, 255))`` (NaN -> 0);
    ``1/scale`` is rounded to float32 once. Per tensor, or per ``axis``."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        raise TypeError(f"x must be a float32 numpy.ndarray, got {getattr(x, 'dtype', type(x).__name__)}")
    N, C, L = _args.qparams_axis(x.shape, axis)
    s, z = _args.qparams(scale, zero_point, C)
    inv = (1.0 / s.astype(np.float64)).astype(np.float32)
    xb = x.reshape(N, C, L)
    v = xb * inv[None, :, None] + z.astype(np.float32)[None, :, None]
    v = np.fmin(np.fmax(v, _f32(0)), _f32(255))       # NaN -> 0, as the kernel
    return np.rint(v).astype(np.uint8).reshape(x.shape)


def dequantize_u8(q, scale, zero_point, axis=None):
    """uint8 -> float32: ``float32(q - zero_point) * scale``."""
    _args.check_uint8(q, "q")
    N, C, L = _args.qparams_axis(q.shape, axis)
    s, z = _args.qparams(scale, zero_point, C)
    d = (q.reshape(N, C, L).astype(np.int32) - z[None, :, None]).astype(np.float32)
    return (d * s[None, :, None]).reshape(q.shape)


def _epilogue(acc, e, axis):
    """acc: int64 with the output channel along ``axis``."""
    shape = [1] * acc.ndim
    shape[axis] = -1
    if e.bias.size:
        acc = acc + e.bias.astype(np.int64).reshape(shape)
    if np.any(acc > 2**31 - 1) or np.any(acc < -(2**31)):
        raise OverflowError("accumulator outside int32 (cannot happen within the kernels' limits)")
    if e.out == "int32":
        return acc.astype(np.int32)
    v = acc.astype(np.float32) * e.mult.reshape(shape)
    if e.out == "float32":
        return np.where(v > 0, v, _f32(0)) if e.relu else v
    lo = _f32(0 if e.relu else -e.out_zero)
    hi = _f32(255 - e.out_zero)
    v = np.minimum(np.maximum(v, lo), hi)
    return (np.rint(v).astype(np.int32) + e.out_zero).astype(np.uint8)


def qgemm(w, a, a_zero=0, bias=None, mult=None, out="int32", out_zero=0, relu=False):
    """C (M, N) = epilogue(w (M, K) int8 . (a (K, N) uint8 - a_zero))."""
    _args.check_int8(w, "w", 2)
    _args.check_uint8(a, "a", 2)
    M, K = w.shape
    if a.shape[0] != K:
        raise ValueError(f"a must have {K} rows (w is {w.shape}), got shape {a.shape}")
    _args.check_k(K, "K")
    e = _args.epilogue(M, a_zero, bias, mult, out, out_zero, relu)
    acc = w.astype(np.int64) @ (a.astype(np.int64) - e.a_zero)
    return _epilogue(acc, e, 0)


def qlinear(x, w, a_zero=0, bias=None, mult=None, out="int32", out_zero=0, relu=False):
    """y (N, M) = epilogue((x (N, K) uint8 - a_zero) . w^T), w (M, K) int8; per feature."""
    _args.check_uint8(x, "x", 2)
    _args.check_int8(w, "w", 2)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features, w expects {w.shape[1]} (w is {w.shape})")
    _args.check_k(w.shape[1], "in_features")
    e = _args.epilogue(w.shape[0], a_zero, bias, mult, out, out_zero, relu)
    acc = (x.astype(np.int64) - e.a_zero) @ w.astype(np.int64).T
    return _epilogue(acc, e, 1)


def qim2col(x, kernel_size, dilation=1, padding=0, stride=1, pad_value=0):
    """uint8 (N, C, H, W) -> (N, C*R*S, P*Q) (torch unfold's order), padding pad_value."""
    _args.check_uint8(x, "x", 4)
    R, S = pair(kernel_size, "kernel_size")
    p = conv_params(x.shape, (1, x.shape[1], R, S), stride, padding, dilation)
    pad_value = _args.zero_point(pad_value, "pad_value")
    return _cols(x, p, pad_value).reshape(p.N, p.C * R * S, p.P * p.Q)


def _cols(x, p, pad_value):
    """(N, C, R, S, P, Q) windows of x padded with pad_value."""
    (sh, sw), (dh, dw) = p.stride, p.dilation
    # pad enough at the end for every window (the output-size formula may leave a rest)
    hb = max(0, (p.P - 1) * sh + dh * (p.R - 1) + 1 - p.H - p.pad_top)
    wb = max(0, (p.Q - 1) * sw + dw * (p.S - 1) + 1 - p.W - p.pad_left)
    xp = np.pad(x, ((0, 0), (0, 0), (p.pad_top, hb), (p.pad_left, wb)), constant_values=pad_value)
    cols = np.empty((p.N, p.C, p.R, p.S, p.P, p.Q), np.uint8)
    for r in range(p.R):
        for s in range(p.S):
            cols[:, :, r, s] = xp[:, :, r * dh: r * dh + (p.P - 1) * sh + 1: sh,
                                  s * dw: s * dw + (p.Q - 1) * sw + 1: sw]
    return cols


def qconv2d(x, w, a_zero=0, bias=None, mult=None, out="int32", out_zero=0, relu=False,
            stride=1, padding=0, dilation=1, groups=1):
    """y (N, K, P, Q) = epilogue(conv(x - a_zero, w)), x uint8 (padding is a real zero:
    the level a_zero), w int8 (K, C/groups, R, S); epilogue per output channel."""
    _args.check_uint8(x, "x", 4)
    _args.check_int8(w, "w", 4)
    p = conv_params(x.shape, w.shape, stride, padding, dilation, groups)
    G = p.groups
    Kg, Cg = p.K // G, p.C // G
    _args.check_k(Cg * p.R * p.S, "C/groups*R*S")
    e = _args.epilogue(p.K, a_zero, bias, mult, out, out_zero, relu)
    cols = _cols(x, p, e.a_zero).astype(np.int64) - e.a_zero      # (N, C, R, S, P, Q)
    cols = cols.reshape(p.N, G, Cg * p.R * p.S, p.P * p.Q)
    wg = w.astype(np.int64).reshape(G, Kg, Cg * p.R * p.S)
    acc = np.einsum("gkc,ngcl->ngkl", wg, cols).reshape(p.N, p.K, p.P, p.Q)
    return _epilogue(acc, e, 1)


def qmax_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling of uint8 x: the maximum of each window's taps inside the input
    (padding never wins; the scale and zero point carry over)."""
    _args.check_uint8(x, "x", 4)
    p = pool_params(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = p.kernel, p.stride, p.padding, p.dilation
    hb = max(0, (p.P - 1) * sh + dh * (kh - 1) + 1 - p.H - ph)
    wb = max(0, (p.Q - 1) * sw + dw * (kw - 1) + 1 - p.W - pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, hb), (pw, wb)), constant_values=0)  # 0 never wins
    y = np.zeros(p.y_shape, np.uint8)
    for i in range(kh):
        for j in range(kw):
            v = xp[:, :, i * dh: i * dh + (p.P - 1) * sh + 1: sh, j * dw: j * dw + (p.Q - 1) * sw + 1: sw]
            np.maximum(y, v, out=y)
    return y


def qrelu(x, zero_point):
    """ReLU of uint8 x with zero point zp: max(x, zp)."""
    _args.check_uint8(x, "x")
    zp = _args.zero_point(zero_point, "zero_point")
    return np.maximum(x, np.uint8(zp))


def to_c4(x, pad=0):
    """uint8 NCHW -> the C4 layout (N, ceil(C/4), H, W, 4) (channels beyond C = ``pad``)."""
    _args.check_uint8(x, "x", 4)
    pad = _args.zero_point(pad, "pad")
    N, C, H, W = x.shape
    Cq = -(-C // 4)
    xp = np.full((N, Cq * 4, H, W), pad, np.uint8)
    xp[:, :C] = x
    return np.ascontiguousarray(xp.reshape(N, Cq, 4, H, W).transpose(0, 1, 3, 4, 2))


def from_c4(x4, channels):
    """The C4 layout -> uint8 NCHW with ``channels`` channels."""
    _args.check_c4(x4, "x", channels)
    N, Cq, H, W, _ = x4.shape
    return np.ascontiguousarray(x4.transpose(0, 1, 4, 2, 3).reshape(N, Cq * 4, H, W)[:, :channels])


def qconv2d_c4(x4, w, a_zero=0, bias=None, mult=None, out="uint8", out_zero=0, relu=False,
               stride=1, padding=0, dilation=1, groups=1, out_layout="c4"):
    """:func:`qconv2d` on a C4 input; the output in C4 (uint8, extra channels = out_zero)
    or NCHW."""
    _args.check_int8(w, "w", 4)
    C = w.shape[1] * int(groups)
    y = qconv2d(from_c4(x4, C), w, a_zero, bias, mult, out, out_zero, relu, stride, padding,
                dilation, groups)
    if out_layout == "c4":
        if out != "uint8":
            raise ValueError('out_layout="c4" needs out="uint8"')
        return to_c4(y, out_zero)
    if out_layout != "nchw":
        raise ValueError(f'out_layout must be "c4" or "nchw", got {out_layout!r}')
    return y


def qmax_pool2d_c4(x4, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """:func:`qmax_pool2d` on a C4 image (every channel of every quad pooled)."""
    _args.check_c4(x4, "x")
    N, Cq = x4.shape[:2]
    y = qmax_pool2d(from_c4(x4, Cq * 4), kernel_size, stride, padding, dilation, ceil_mode)
    return to_c4(y)
