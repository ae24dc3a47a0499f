"""Shapes and geometry: convolution, pooling, unfold/fold and linear parameters, with
PyTorch's output-size rules and int64 overflow checks."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .base import INT64_MAX, as_int, check_array, common_dtype, pair

def out_size(size, pad_total, dilation, kernel, stride):
    """PyTorch's output-size formula: floor((H + 2p - d(k-1) - 1)/s) + 1 with pad_total = 2p."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


class ConvParams(NamedTuple):
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    groups: int
    stride: tuple
    dilation: tuple
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    P: int
    Q: int

    @property
    def x_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def w_shape(self):
        return (self.K, self.C // self.groups, self.R, self.S)

    @property
    def y_shape(self):
        return (self.N, self.K, self.P, self.Q)


def _check_overflow(name, *dims):
    total = 1
    for d in dims:
        total *= int(d)
    if total > INT64_MAX // 8:
        raise OverflowError(f"{name} of shape {tuple(dims)} has too many elements to address")
    return total


def conv_padding(padding, kernel, dilation, stride):
    """Return (top, bottom, left, right) padding for ``padding`` (int, pair, "valid", "same")."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f'padding="same" needs stride 1, got stride={stride}')
            out = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                out += [total // 2, total - total // 2]
            return tuple(out)
        raise ValueError(f'padding must be an int, a pair, "valid" or "same", got {padding!r}')
    ph, pw = pair(padding, "padding", minimum=0)
    return ph, ph, pw, pw


def conv_params(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """Validate a convolution's arguments and return its full geometry."""
    if len(x_shape) != 4:
        raise ValueError(f"x must be a 4-d array (N, C, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"w must be a 4-d array (K, C/groups, R, S), got shape {tuple(w_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    K, Cg, R, S = (int(v) for v in w_shape)
    groups = as_int(groups, "groups", None)
    if groups < 1:
        raise ValueError(f"groups must be positive, got {groups}")
    stride = pair(stride, "stride")
    dilation = pair(dilation, "dilation")
    if C == 0 or H == 0 or W == 0:
        raise ValueError(f"x must have C, H and W >= 1, got shape {tuple(x_shape)}")
    if K == 0 or R == 0 or S == 0 or Cg == 0:
        raise ValueError(f"w must have K, C/groups, R and S >= 1, got shape {tuple(w_shape)}")
    if C % groups:
        raise ValueError(f"x has {C} channels, which is not divisible by groups={groups}")
    if K % groups:
        raise ValueError(f"w has {K} output channels, which is not divisible by groups={groups}")
    if Cg * groups != C:
        raise ValueError(
            f"w has shape {tuple(w_shape)}: expected w.shape[1] == C/groups = {C // groups} "
            f"for x with C={C} and groups={groups}"
        )
    pt, pb, pl, pr = conv_padding(padding, (R, S), dilation, stride)
    P = out_size(H, pt + pb, dilation[0], R, stride[0])
    Q = out_size(W, pl + pr, dilation[1], S, stride[1])
    if P < 1 or Q < 1:
        raise ValueError(
            f"kernel {R}x{S} (dilation {dilation}) is larger than the padded input "
            f"{H + pt + pb}x{W + pl + pr}: output would be {P}x{Q}"
        )
    _check_overflow("output", N, K, P, Q)
    _check_overflow("column buffer", C, R, S, P, Q)
    return ConvParams(N, C, H, W, K, R, S, groups, stride, dilation, pt, pb, pl, pr, P, Q)


class PoolParams(NamedTuple):
    N: int
    C: int
    H: int
    W: int
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    P: int
    Q: int
    ceil_mode: bool

    @property
    def y_shape(self):
        return (self.N, self.C, self.P, self.Q)


def _pool_out(size, pad, dil, k, s, ceil_mode):
    """PyTorch's pooling output size; 0 when not even one window fits."""
    num = size + 2 * pad - (dil * (k - 1) + 1)
    out = (num + (s - 1 if ceil_mode else 0)) // s + 1     # floor division, also for num < 0
    # PyTorch: with ceil_mode the last window must start inside the input or the left padding.
    if ceil_mode and out > 0 and (out - 1) * s >= size + pad:
        out -= 1
    return max(out, 0)


def pool_params(x_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Validate a pooling's arguments and return its geometry (PyTorch's rules)."""
    if len(x_shape) != 4:
        raise ValueError(f"x must be a 4-d array (N, C, H, W), got shape {tuple(x_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    pad = pair(padding, "padding", minimum=0)
    dilation = pair(dilation, "dilation")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    if C == 0 or H == 0 or W == 0:
        raise ValueError(f"x must have C, H and W >= 1, got shape {tuple(x_shape)}")
    for p, k, d in zip(pad, kernel, dilation):
        eff = d * (k - 1) + 1
        if 2 * p > eff:
            raise ValueError(
                f"padding {pad} must be at most half the (dilated) kernel size "
                f"{tuple(d_ * (k_ - 1) + 1 for k_, d_ in zip(kernel, dilation))}"
            )
    P = _pool_out(H, pad[0], dilation[0], kernel[0], stride[0], bool(ceil_mode))
    Q = _pool_out(W, pad[1], dilation[1], kernel[1], stride[1], bool(ceil_mode))
    if P < 1 or Q < 1:
        raise ValueError(
            f"kernel_size {kernel} (dilation {dilation}) is larger than the padded input "
            f"{H + 2 * pad[0]}x{W + 2 * pad[1]}"
        )
    _check_overflow("output", N, C, P, Q)
    return PoolParams(N, C, H, W, kernel, stride, pad, dilation, P, Q, bool(ceil_mode))


def shape4(shape, name):
    """Validate a user-given 4-d shape tuple (e.g. ``x_shape`` of a backward call)."""
    try:
        dims = tuple(as_int(v, name, None) for v in shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of 4 ints, got {shape!r}") from None
    if len(dims) != 4 or any(d < 0 for d in dims):
        raise ValueError(f"{name} must be a tuple of 4 non-negative ints (N, C, H, W), got {shape!r}")
    return dims


def check_shape(a, expected, name):
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(a.shape)}")


def linear_params(x, w, b=None, dy=None):
    """Validate the arrays of a fully connected layer; return ``(dtype, N, in_features, out_features)``.

    x: (N, in_features); w: (out_features, in_features), as ``torch.nn.functional.linear``;
    b: (out_features,) or None; dy (backward only): (N, out_features).
    """
    check_array(x, "x", 2)
    check_array(w, "w", 2)
    if b is not None:
        check_array(b, "b", 1)
    if dy is not None:
        check_array(dy, "dy", 2)
    dtype = common_dtype(x=x, w=w, b=b, dy=dy)
    N, in_features = x.shape
    out_features = w.shape[0]
    if w.shape[1] != in_features:
        raise ValueError(
            f"w must have shape (out_features, {in_features}) to match x of shape {tuple(x.shape)} "
            f"(x is (N, in_features)), got {tuple(w.shape)}"
        )
    if b is not None:
        check_shape(b, (out_features,), "b")
    if dy is not None:
        check_shape(dy, (N, out_features), "dy")
    return dtype, N, in_features, out_features


def check_max_pool_windows(p):
    """Every max-pooling window must contain at least one real input element.

    With dilation, a window can straddle the input so that all its taps land in
    the padding (e.g. W=2, kernel 2, dilation 3, padding 1): there is no element
    for its index to name (PyTorch returns -inf with an out-of-range index
    there), so such a geometry is rejected.
    """
    for axis, (name, size, out) in enumerate((("height", p.H, p.P), ("width", p.W, p.Q))):
        k, s, pad, d = p.kernel[axis], p.stride[axis], p.padding[axis], p.dilation[axis]
        if d == 1:
            continue          # 2*pad <= k: every undilated window holds a real element
        start = np.arange(out, dtype=np.int64) * s - pad
        taps = start[:, None] + np.arange(k, dtype=np.int64)[None, :] * d
        hits = ((taps >= 0) & (taps < size)).any(axis=1)
        if not hits.all():
            w = int(np.argmin(hits))
            raise ValueError(
                f"max pooling window {w} along the {name} covers only padding "
                f"(kernel_size {p.kernel}, stride {p.stride}, padding {p.padding}, "
                f"dilation {p.dilation}, input {p.H}x{p.W}); reduce padding or dilation"
            )


def unfold_params(x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Geometry of an im2col (unfold): a convolution with one output channel over all of C."""
    R, S = pair(kernel_size, "kernel_size")
    return conv_params(x_shape, (1, x_shape[1] if len(x_shape) == 4 else 1, R, S),
                       stride, padding, dilation, 1)


def fold_params(cols_shape, output_size, kernel_size, stride=1, padding=0, dilation=1):
    """Validate a col2im (fold) of columns ``cols_shape`` = (N, C*R*S, L) into ``output_size``."""
    H, W = pair(output_size, "output_size")
    R, S = pair(kernel_size, "kernel_size")
    N, CRS, L = cols_shape
    if CRS % (R * S):
        raise ValueError(
            f"cols.shape[1] = {CRS} must be a multiple of the kernel area {R}*{S} = {R * S}"
        )
    if CRS == 0:
        raise ValueError(f"cols must have at least one channel's rows, got shape {tuple(cols_shape)}")
    p = unfold_params((N, CRS // (R * S), H, W), (R, S), stride, padding, dilation)
    if L != p.P * p.Q:
        raise ValueError(
            f"cols.shape[2] = {L} does not match the {p.P}x{p.Q} = {p.P * p.Q} windows of an "
            f"{H}x{W} image with these kernel_size, stride, padding and dilation"
        )
    return p


def winograd_ok(p):
    """True when the geometry is one Winograd handles: 3x3, stride 1, dilation 1."""
    return (p.R, p.S) == (3, 3) and tuple(p.stride) == (1, 1) and tuple(p.dilation) == (1, 1)


def check_winograd(p):
    """ValueError unless Winograd handles geometry ``p`` (for an explicit ``algo='winograd'``)."""
    if not winograd_ok(p):
        raise ValueError(
            "algo='winograd' needs a 3x3 kernel with stride 1 and dilation 1, got kernel "
            f"{p.R}x{p.S}, stride {tuple(p.stride)}, dilation {tuple(p.dilation)}; "
            "use algo='auto' (or 'gemm', 'direct', 'im2col') for this layer"
        )
