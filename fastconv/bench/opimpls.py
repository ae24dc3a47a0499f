"""The implementations timed for the 1-d and the transposed convolution cases: fastconv and
PyTorch, forward and forward + backward.

Like :func:`fastconv.bench.impls.conv_impls`: each function returns ``(info, impls)``,
``impls`` mapping ``"fastconv"`` (and ``"torch"`` when the torch module is given) to a pair
``(forward, forward_and_backward)`` of argument-less callables on fixed random float32 data.
"forward + backward" is the forward pass, then the data, weight and bias gradients (for
PyTorch in one ``aten.convolution_backward`` call, the same work as fastconv's).
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional
from .cases import CONV1D_CASES, convt_case

__all__ = ["conv1d_impls", "convt_impls"]


def _data(rng, x_shape, w_shape, fan_in, n_out):
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32) * np.float32(1.0 / math.sqrt(fan_in))
    b = rng.standard_normal(n_out, dtype=np.float32)
    return x, w, b


def conv1d_impls(name, torch=None):
    """The callables timed for 1-d convolution case ``name`` (a CONV1D_CASES key)."""
    N, C, L, K, R, stride, pad, groups = CONV1D_CASES[name]
    rng = np.random.default_rng(3)
    x, w, b = _data(rng, (N, C, L), (K, C // groups, R), C // groups * R, K)
    kw = dict(stride=stride, padding=pad, dilation=1, groups=groups)
    y = functional.conv1d(x, w, b, **kw)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    L_out = y.shape[2]
    info = {"shape": {"N": N, "C": C, "L": L, "K": K, "R": R, "stride": stride, "pad": pad,
                      "groups": groups, "L_out": L_out},
            "flop_fwd": 2.0 * N * K * (C // groups) * R * L_out}

    def fwd():
        functional.conv1d(x, w, b, **kw)

    def step():
        functional.conv1d(x, w, b, **kw)
        functional.conv1d_backward(dy, x, w, **kw)

    impls = {"fastconv": (fwd, step)}
    if torch is not None:
        F = torch.nn.functional
        xt, wt, bt, dyt = (torch.from_numpy(a) for a in (x, w, b, dy))
        conv_bwd = torch.ops.aten.convolution_backward

        def tfwd():
            with torch.no_grad():
                F.conv1d(xt, wt, bt, stride, pad, 1, groups)

        def tstep():
            with torch.no_grad():
                F.conv1d(xt, wt, bt, stride, pad, 1, groups)
                conv_bwd(dyt, xt, wt, [K], [stride], [pad], [1], False, [0], groups, [True, True, True])

        impls["torch"] = (tfwd, tstep)
    return info, impls


def convt_impls(name, torch=None):
    """The callables timed for transposed convolution case ``name`` (a CONVT_CASES entry)."""
    N, Cin, H, W, Cout, R, S, stride, pad, opad, groups = convt_case(name)
    rng = np.random.default_rng(4)
    x, w, b = _data(rng, (N, Cin, H, W), (Cin, Cout // groups, R, S), Cin // groups * R * S, Cout)
    kw = dict(stride=stride, padding=pad, output_padding=opad, groups=groups, dilation=1)
    y = functional.conv_transpose2d(x, w, b, **kw)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    info = {"shape": {"N": N, "C_in": Cin, "H": H, "W": W, "C_out": Cout, "R": R, "S": S, "stride": stride,
                      "pad": pad, "output_padding": list(opad), "groups": groups,
                      "H_out": y.shape[2], "W_out": y.shape[3]},
            # the adjoint of a convolution with the same multiply-adds
            "flop_fwd": 2.0 * N * Cin * (Cout // groups) * R * S * H * W}

    def fwd():
        functional.conv_transpose2d(x, w, b, **kw)

    def step():
        functional.conv_transpose2d(x, w, b, **kw)
        functional.conv_transpose2d_backward(dy, x, w, **kw)

    impls = {"fastconv": (fwd, step)}
    if torch is not None:
        F = torch.nn.functional
        xt, wt, bt, dyt = (torch.from_numpy(a) for a in (x, w, b, dy))
        conv_bwd = torch.ops.aten.convolution_backward
        s2, p2, o2 = [stride, stride], [pad, pad], list(opad)

        def tfwd():
            with torch.no_grad():
                F.conv_transpose2d(xt, wt, bt, stride, pad, tuple(opad), groups, 1)

        def tstep():
            with torch.no_grad():
                F.conv_transpose2d(xt, wt, bt, stride, pad, tuple(opad), groups, 1)
                conv_bwd(dyt, xt, wt, [Cout], s2, p2, [1, 1], True, o2, groups, [True, True, True])

        impls["torch"] = (tfwd, tstep)
    return info, impls
