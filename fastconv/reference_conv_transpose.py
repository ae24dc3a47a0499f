"""Plain NumPy reference of the transposed convolution (the oracle of
:mod:`fastconv.functional_conv_transpose`).

Written from the definition, independently of conv2d: every input pixel (i, j)
scatters ``x[n, ci, i, j] * w[ci, co, r, c]`` to the uncropped output position
``(i*s + r*d, j*s + c*d)``; the output is that full canvas with ``padding`` rows and
columns cut from each side (and ``output_padding`` extra rows and columns kept at
the end). The gradients gather from the same positions.
"""

from __future__ import annotations

import numpy as np

from ._args import conv_transpose_inputs
from ._args import pair, torch_keywords

__all__ = ["conv_transpose2d", "conv_transpose2d_backward"]


def _canvas(t, x_shape, w_shape, stride, dilation, padding):
    """Size of the uncropped canvas (big enough for the output window too) and the
    (row, column) slices of each tap's positions in it."""
    H, W = x_shape[2:]
    R, S = w_shape[2:]
    (sh, sw), (dh, dw) = stride, dilation
    ph, pw = padding
    Ho, Wo = t.y_shape[2:]
    Hc = max((H - 1) * sh + dh * (R - 1) + 1, ph + Ho)
    Wc = max((W - 1) * sw + dw * (S - 1) + 1, pw + Wo)
    taps = {(r, c): (slice(r * dh, r * dh + (H - 1) * sh + 1, sh),
                     slice(c * dw, c * dw + (W - 1) * sw + 1, sw))
            for r in range(R) for c in range(S)}
    return Hc, Wc, taps


def _norm(stride, padding, dilation):
    return pair(stride, "stride"), pair(padding, "padding", minimum=0), pair(dilation, "dilation")


@torch_keywords
def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     algo="auto"):
    """Transposed convolution, as ``torch.nn.functional.conv_transpose2d`` (NumPy)."""
    t, dtype = conv_transpose_inputs(x, w, b, stride, padding, output_padding, groups, dilation, algo)
    stride, padding, dilation = _norm(stride, padding, dilation)
    N, Cout, Ho, Wo = t.y_shape
    Cin, Kg = w.shape[:2]
    G = int(groups)
    Cg = Cin // G
    Hc, Wc, taps = _canvas(t, x.shape, w.shape, stride, dilation, padding)
    canvas = np.zeros((N, Cout, Hc, Wc), dtype)
    for g in range(G):
        xg = x[:, g * Cg:(g + 1) * Cg]
        for (r, c), (rs, cs) in taps.items():
            # (N, Cg, H, W) x (Cg, Kg) -> (N, Kg, H, W)
            canvas[:, g * Kg:(g + 1) * Kg, rs, cs] += np.einsum(
                "nchw,ck->nkhw", xg, w[g * Cg:(g + 1) * Cg, :, r, c])
    y = canvas[:, :, padding[0]:padding[0] + Ho, padding[1]:padding[1] + Wo].copy()
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y.astype(dtype, copy=False)


@torch_keywords
def conv_transpose2d_backward(dy, x, w, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1, need_dx=True, need_db=True, algo="auto"):
    """Gradients of :func:`conv_transpose2d`: (dx or None, dw, db or None) (NumPy)."""
    t, dtype = conv_transpose_inputs(x, w, None, stride, padding, output_padding, groups, dilation, algo,
                      dy=dy)
    stride, padding, dilation = _norm(stride, padding, dilation)
    N, Cout, Ho, Wo = t.y_shape
    Cin, Kg = w.shape[:2]
    G = int(groups)
    Cg = Cin // G
    Hc, Wc, taps = _canvas(t, x.shape, w.shape, stride, dilation, padding)
    dcanvas = np.zeros((N, Cout, Hc, Wc), dtype)
    dcanvas[:, :, padding[0]:padding[0] + Ho, padding[1]:padding[1] + Wo] = dy
    dx = np.zeros(x.shape, dtype) if need_dx else None
    dw = np.zeros(w.shape, dtype)
    for g in range(G):
        xg = x[:, g * Cg:(g + 1) * Cg]
        for (r, c), (rs, cs) in taps.items():
            d = dcanvas[:, g * Kg:(g + 1) * Kg, rs, cs]            # (N, Kg, H, W)
            dw[g * Cg:(g + 1) * Cg, :, r, c] = np.einsum("nchw,nkhw->ck", xg, d)
            if dx is not None:
                dx[:, g * Cg:(g + 1) * Cg] += np.einsum(
                    "nkhw,ck->nchw", d, w[g * Cg:(g + 1) * Cg, :, r, c])
    db = dy.sum(axis=(0, 2, 3)).astype(dtype) if need_db else None
    return dx, dw, db
