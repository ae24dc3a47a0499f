"""Geometry of the further operators: transposed and 1-d convolution, adaptive and Lp
pooling, deformable convolution (PyTorch's and torchvision's rules)."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .base import as_int, pair
from .geometry import ConvParams, _check_overflow, conv_params, out_size, pool_params


# ---- transposed convolution (issue 14) -------------------------------------


class ConvTransposeParams(NamedTuple):
    """A transposed convolution as the adjoint of a convolution: ``conv`` is the conv2d
    whose input is our output (cropped to ``conv.H`` x ``conv.W`` rows and columns) and
    whose output is our input; ``conv`` is None when no input element reaches the output
    (then the result is the bias alone)."""
    conv: object
    y_shape: tuple
    output_padding: tuple


def conv_transpose_params(x_shape, w_shape, stride=1, padding=0, output_padding=0, groups=1,
                          dilation=1):
    """Validate ``conv_transpose2d``'s arguments (PyTorch's rules): x (N, Cin, H, W),
    w (Cin, Cout/groups, kh, kw); output H_out = (H-1)*s - 2p + d*(kh-1) + output_padding
    + 1, with output_padding < max(stride, dilation)."""
    if len(x_shape) != 4:
        raise ValueError(f"x must be a 4-d array (N, C_in, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"w must be a 4-d array (C_in, C_out/groups, kh, kw), got shape "
                         f"{tuple(w_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    Cw, Kg, R, S = (int(v) for v in w_shape)
    groups = as_int(groups, "groups")
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    if isinstance(padding, str):
        raise ValueError(f"conv_transpose2d takes an int or a pair as padding, got {padding!r}")
    pad = pair(padding, "padding", minimum=0)
    opad = pair(output_padding, "output_padding", minimum=0)
    if C == 0 or H == 0 or W == 0:
        raise ValueError(f"x must have C, H and W >= 1, got shape {tuple(x_shape)}")
    if Kg == 0 or R == 0 or S == 0:
        raise ValueError(f"w must have C_out/groups, kh and kw >= 1, got shape {tuple(w_shape)}")
    if Cw != C:
        raise ValueError(f"w has shape {tuple(w_shape)}: expected w.shape[0] == C_in = {C} "
                         "(weights are (C_in, C_out/groups, kh, kw) as torch's)")
    if C % groups:
        raise ValueError(f"x has {C} channels, which is not divisible by groups={groups}")
    for o, s, d in zip(opad, stride, dilation):
        if o >= max(s, d):
            raise ValueError(f"output_padding {opad} must be smaller than either stride "
                             f"{stride} or dilation {dilation}")
    K = Kg * groups
    size, conv_size, conv_pad = [], [], []
    for n_in, k, s, p, d, o in zip((H, W), (R, S), stride, pad, dilation, opad):
        out = (n_in - 1) * s - 2 * p + d * (k - 1) + o + 1
        if out < 1:
            raise ValueError(f"conv_transpose2d output would be empty (size {out}) for input "
                             f"{H}x{W}, kernel {R}x{S}, stride {stride}, padding {pad}, "
                             f"dilation {dilation}, output_padding {opad}")
        # The conv whose backward-data this is: its output is exactly n_in long when its
        # end padding is in [p - o, p - o + s - 1]; a negative end padding cannot be given,
        # so rows past p + s - 1 of output padding (no input reaches them) are cropped off.
        oc = min(o, p + s - 1)
        size.append(out)
        conv_size.append(out - (o - oc))
        conv_pad.append((p, max(0, p - oc)))
    _check_overflow("output", N, K, *size)
    y_shape = (N, K, size[0], size[1])
    if conv_size[0] < 1 or conv_size[1] < 1:
        return ConvTransposeParams(None, y_shape, opad)
    (pt, pb), (pl, pr) = conv_pad
    P = out_size(conv_size[0], pt + pb, dilation[0], R, stride[0])
    Q = out_size(conv_size[1], pl + pr, dilation[1], S, stride[1])
    assert (P, Q) == (H, W), "the end padding is chosen so that the conv gives back H x W"
    _check_overflow("column buffer", K, R, S, P, Q)
    p = ConvParams(N, K, conv_size[0], conv_size[1], C, R, S, groups, stride, dilation,
                   pt, pb, pl, pr, P, Q)
    return ConvTransposeParams(p, y_shape, opad)


# ---- adaptive pooling (issue 14) -------------------------------------------


def adaptive_output_size(x_shape, output_size):
    """``output_size`` (an int, or a pair whose entries are ints or None, None meaning
    "the input's size") of an adaptive pooling of x (N, C, H, W), as (oh, ow)."""
    if len(x_shape) != 4:
        raise ValueError(f"x must be a 4-d array (N, C, H, W), got shape {tuple(x_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    if C == 0 or H == 0 or W == 0:
        raise ValueError(f"x must have C, H and W >= 1, got shape {tuple(x_shape)}")
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"output_size must be an int or a pair, got {output_size!r}")
        out = tuple(size if v is None else as_int(v, "output_size")
                    for v, size in zip(output_size, (H, W)))
    else:
        out = (as_int(output_size, "output_size"),) * 2
    _check_overflow("output", N, C, *out)
    return out


def adaptive_windows(size, out):
    """PyTorch's adaptive windows along one axis: window i is [start[i], end[i]) with
    start = floor(i*size/out), end = ceil((i+1)*size/out) (int64 arrays)."""
    i = np.arange(out, dtype=np.int64)
    return (i * size) // out, -((-(i + 1) * size) // out)


# ---- Lp pooling (issue 14) ---------------------------------------------------


def lp_pool_params(x_shape, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Validate ``lp_pool2d``'s arguments: ``norm_type`` p a real number > 0 (``inf``
    allowed: max pooling); the windows as ``avg_pool2d``'s with no padding. Returns
    (p as a float, PoolParams)."""
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"norm_type must be a real number, got {type(norm_type).__name__} "
                        f"{norm_type!r}")
    p = float(norm_type)
    if not p > 0:
        raise ValueError(f"norm_type must be > 0 (inf for max pooling), got {norm_type!r}")
    return p, pool_params(x_shape, kernel_size, stride, 0, 1, ceil_mode)


# ---- 1-d convolution (issue 14) --------------------------------------------


def single(value, name, *, minimum=1):
    """An int or a 1-tuple of one (PyTorch's 1-d ``stride``, ``padding``, ...), as an int."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an int or a 1-tuple, got {value!r}")
        value = value[0]
    return as_int(value, name, minimum)


def conv1d_params(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """Validate a 1-d convolution, x (N, C, L), w (K, C/groups, R), ``padding`` an int,
    a 1-tuple, "valid" or "same" (stride 1 only); return the geometry of the same
    convolution in 2-d (an (N, C, 1, L) image, a 1 x R kernel): ``ConvParams`` with H = 1."""
    if len(x_shape) != 3:
        raise ValueError(f"x must be a 3-d array (N, C, L), got shape {tuple(x_shape)}")
    if len(w_shape) != 3:
        raise ValueError(f"w must be a 3-d array (K, C/groups, R), got shape {tuple(w_shape)}")
    s, d = single(stride, "stride"), single(dilation, "dilation")
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f'padding must be an int, "valid" or "same", got {padding!r}')
        if padding == "same" and s != 1:
            raise ValueError(f'padding="same" needs stride 1, got stride={s}')
        pad = padding
    else:
        pad = (0, single(padding, "padding", minimum=0))
    N, C, L = (int(v) for v in x_shape)
    K, Cg, R = (int(v) for v in w_shape)
    if L and R:
        lp = L + (2 * pad[1] if not isinstance(pad, str) else 0)
        if pad != "same" and lp < d * (R - 1) + 1:
            raise ValueError(f"kernel size {R} (dilation {d}) is larger than the padded input "
                             f"length {lp}")
    if C == 0 or L == 0:
        raise ValueError(f"x must have C and L >= 1, got shape {tuple(x_shape)}")
    return conv_params((N, C, 1, L), (K, Cg, 1, R), (1, s), pad, (1, d), groups)


# ---- deformable convolution (issue 14) ---------------------------------------


class DeformParams(NamedTuple):
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    groups: int
    offset_groups: int
    stride: tuple
    padding: tuple
    dilation: tuple
    P: int
    Q: int


def deform_params(x_shape, offset_shape, w_shape, stride=1, padding=0, dilation=1,
                  mask_shape=None):
    """Validate torchvision's ``deform_conv2d`` arguments: x (N, C, H, W), offset
    (N, 2*OG*kh*kw, P, Q), w (K, C/groups, kh, kw) (groups = C / w.shape[1]), mask None or
    (N, OG*kh*kw, P, Q); OG = offset.shape[1] // (2*kh*kw) offset groups, C % OG == 0."""
    for name, shape in (("x", x_shape), ("offset", offset_shape), ("w", w_shape),
                        ("mask", mask_shape)):
        if shape is not None and len(shape) != 4:
            raise ValueError(f"{name} must be a 4-d array, got shape {tuple(shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    K, Cg, R, S = (int(v) for v in w_shape)
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    padding = pair(padding, "padding", minimum=0)
    if C == 0 or H == 0 or W == 0:
        raise ValueError(f"x must have C, H and W >= 1, got shape {tuple(x_shape)}")
    if K == 0 or Cg == 0 or R == 0 or S == 0:
        raise ValueError(f"w must have K, C/groups, kh and kw >= 1, got shape {tuple(w_shape)}")
    if C % Cg:
        raise ValueError(f"w.shape[1] = {Cg} must divide the {C} input channels (groups = "
                         "C / w.shape[1])")
    groups = C // Cg
    if K % groups:
        raise ValueError(f"w has {K} output channels, not divisible by groups = {groups}")
    P = out_size(H, 2 * padding[0], dilation[0], R, stride[0])
    Q = out_size(W, 2 * padding[1], dilation[1], S, stride[1])
    if P < 1 or Q < 1:
        raise ValueError(f"kernel {R}x{S} (dilation {dilation}) is larger than the padded input "
                         f"{H + 2 * padding[0]}x{W + 2 * padding[1]}")
    taps = R * S
    O = int(offset_shape[1])
    if O == 0 or O % (2 * taps):
        raise ValueError(f"offset.shape[1] = {O} must be a positive multiple of 2*kh*kw = "
                         f"{2 * taps} ((dy, dx) per tap and offset group)")
    og = O // (2 * taps)
    if C % og:
        raise ValueError(f"the {og} offset groups (offset.shape[1] / (2*kh*kw)) must divide "
                         f"the {C} input channels")
    if tuple(offset_shape) != (N, O, P, Q):
        raise ValueError(f"offset must have shape {(N, O, P, Q)}, got {tuple(offset_shape)}")
    if mask_shape is not None and tuple(mask_shape) != (N, og * taps, P, Q):
        raise ValueError(f"mask must have shape {(N, og * taps, P, Q)}, got {tuple(mask_shape)}")
    _check_overflow("output", N, K, P, Q)
    _check_overflow("column buffer", 2, C, R, S, P, Q)
    return DeformParams(N, C, H, W, K, R, S, groups, og, stride, padding, dilation, P, Q)
