"""Argument validation of the int8 operations, shared by :mod:`fastconv.qfunctional`
(the kernels) and :mod:`fastconv.qreference` (the NumPy oracle), built on the
general validators of :mod:`fastconv._args`, so both accept and reject exactly the
same inputs with the same messages.

The numbers (see csrc/qops.h): activations uint8 with a zero point, weights int8
(symmetric, zero point 0), int32 accumulation, then an epilogue: ``out="int32"``
the accumulator itself; ``"uint8"`` requantized with a per-channel multiplier
and an output zero point; ``"float32"`` scaled by a per-channel multiplier.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .base import as_int

__all__ = ["OUT_KINDS", "MAX_K", "BIAS_MAX", "Epilogue", "check_uint8", "check_int8", "check_c4",
           "zero_point", "epilogue", "qparams", "qparams_axis"]

#: The epilogue output kinds.
OUT_KINDS = ("int32", "uint8", "float32")
#: Largest reduction length (C/groups*R*S of a conv, in_features of a Linear): keeps
#: every int32 sum exact (255 * 128 * K < 2**30).
MAX_K = 32768
#: Largest |bias| (in accumulator units).
BIAS_MAX = 2**30


class Epilogue(NamedTuple):
    out: str                 # "int32" | "uint8" | "float32"
    relu: bool
    a_zero: int
    out_zero: int
    bias: np.ndarray         # int32 (M,), or an empty array for no bias
    mult: np.ndarray         # float32 (M,), or an empty array for out="int32"

    @property
    def out_dtype(self):
        return np.dtype({"int32": np.int32, "uint8": np.uint8, "float32": np.float32}[self.out])


def check_uint8(x, name, ndim=None):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8 (quantized activations), got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array, got shape {x.shape} ({x.ndim}-d)")
    return x


def check_int8(w, name, ndim=None):
    if not isinstance(w, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(w).__name__}")
    if w.dtype != np.int8:
        raise TypeError(f"{name} must have dtype int8 (quantized weights), got {w.dtype}")
    if ndim is not None and w.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array, got shape {w.shape} ({w.ndim}-d)")
    return w


def check_c4(x4, name, channels=None):
    """A uint8 array in the C4 layout (N, ceil(C/4), H, W, 4)."""
    check_uint8(x4, name, 5)
    if x4.shape[4] != 4:
        raise ValueError(f"{name} must be in the C4 layout (N, ceil(C/4), H, W, 4), got shape {x4.shape}")
    if channels is not None and x4.shape[1] != -(-channels // 4):
        raise ValueError(f"{name} has {x4.shape[1]} channel quads, {channels} channels need "
                         f"{-(-channels // 4)}")
    return x4


def zero_point(v, name):
    """A zero point: an int in [0, 255]."""
    v = as_int(v, name, minimum=0)
    if v > 255:
        raise ValueError(f"{name} must be in [0, 255] (a uint8 level), got {v}")
    return v


def check_k(k, what):
    if k > MAX_K:
        raise ValueError(
            f"{what} is {k}: the int8 kernels sum at most {MAX_K} products per output "
            "(so that the int32 accumulator is exact)"
        )
    return k


def epilogue(M, a_zero=0, bias=None, mult=None, out="int32", out_zero=0, relu=False):
    """Validate the epilogue arguments for M output channels."""
    if not isinstance(out, str) or out not in OUT_KINDS:
        raise ValueError(f"out must be one of {OUT_KINDS}, got {out!r}")
    if not isinstance(relu, (bool, np.bool_)):
        raise TypeError(f"relu must be True or False, got {relu!r}")
    a_zero = zero_point(a_zero, "a_zero")
    out_zero = zero_point(out_zero, "out_zero")
    if bias is None:
        b = np.empty(0, np.int32)
    else:
        b = np.asarray(bias)
        if b.dtype.kind not in "iu":
            raise TypeError(f"bias must be an integer array (int32 accumulator units), got dtype {b.dtype}")
        if b.shape != (M,):
            raise ValueError(f"bias must have shape ({M},), got {b.shape}")
        if b.size and int(np.max(np.abs(b.astype(np.int64)))) > BIAS_MAX:
            raise ValueError(f"bias values must lie in [-2**30, 2**30], got one of {int(np.max(np.abs(b)))}")
        b = np.ascontiguousarray(b, dtype=np.int32)
    if out == "int32":
        m = np.empty(0, np.float32)
    else:
        if mult is None:
            raise ValueError(f'out="{out}" needs mult (the per-channel output multiplier)')
        if isinstance(mult, numbers.Real) and not isinstance(mult, (bool, np.bool_)):
            mult = np.full(M, mult, np.float32)
        m = np.asarray(mult)
        if m.dtype.kind != "f":
            raise TypeError(f"mult must be a float array, got dtype {m.dtype}")
        if m.shape != (M,):
            raise ValueError(f"mult must have shape ({M},) or be a number, got {m.shape}")
        m = np.ascontiguousarray(m, dtype=np.float32)
        if not np.all(np.isfinite(m)):
            raise ValueError("mult must be finite")
    return Epilogue(out, bool(relu), a_zero, out_zero, b, m)


def qparams(scale, zp, C, name="scale"):
    """Per-tensor (C == 1) or per-channel scales and zero points as float32 / int32 (C,)."""
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    z = np.asarray(zp).reshape(-1)
    if z.dtype.kind not in "iu":
        raise TypeError(f"zero_point must be an int or an integer array, got dtype {z.dtype}")
    if s.size == 1 and C != 1:
        s = np.full(C, s[0])
    if z.size == 1 and C != 1:
        z = np.full(C, z[0])
    if s.shape != (C,) or z.shape != (C,):
        raise ValueError(f"{name} and zero_point must be numbers or arrays of {C} values, "
                         f"got shapes {s.shape} and {z.shape}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"{name} must be finite and positive")
    if np.any(z < 0) or np.any(z > 255):
        raise ValueError("zero_point must lie in [0, 255]")
    return s.astype(np.float32), z.astype(np.int32)


def qparams_axis(shape, axis):
    """(N, C, L) blocks of ``shape`` for per-tensor (axis None) or per-``axis`` parameters."""
    n = int(np.prod(shape, dtype=np.int64))
    if axis is None:
        return 1, 1, n
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"axis must be an int or None, got {axis!r}")
    ax = as_int(axis, "axis", minimum=None)
    nd = len(shape)
    if not -nd <= ax < nd:
        raise ValueError(f"axis {axis} is out of range for an array of shape {tuple(shape)}")
    ax %= nd
    N = int(np.prod(shape[:ax], dtype=np.int64))
    L = int(np.prod(shape[ax + 1:], dtype=np.int64))
    return N, int(shape[ax]), L
