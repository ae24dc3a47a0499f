"""Plain NumPy reference of the 1-d convolution (the oracle of
:mod:`fastconv.functional_conv1d`): pad the sequence, then one loop over the kernel
taps, each a strided view of the padded input times that tap's weights."""

from __future__ import annotations

import numpy as np

from ._args import conv1d_inputs
from ._args import torch_keywords

__all__ = ["conv1d", "conv1d_backward"]


def _tap(p, r):
    """Slice of the padded sequence that tap r reads for the L_out outputs."""
    s, d = p.stride[1], p.dilation[1]
    return slice(r * d, r * d + s * (p.Q - 1) + 1, s)


@torch_keywords
def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algo="auto"):
    """1-d convolution (NumPy), as ``torch.nn.functional.conv1d``."""
    p, dtype = conv1d_inputs(x, w, b, stride, padding, dilation, groups, algo)
    G, Kg, Cg = p.groups, p.K // p.groups, p.C // p.groups
    xp = np.pad(x, ((0, 0), (0, 0), (p.pad_left, p.pad_right))).astype(dtype, copy=False)
    y = np.zeros((p.N, p.K, p.Q), dtype)
    for g in range(G):
        for r in range(p.S):
            seg = xp[:, g * Cg:(g + 1) * Cg, _tap(p, r)]             # (N, Cg, L_out)
            y[:, g * Kg:(g + 1) * Kg] += np.einsum("kc,ncl->nkl", w[g * Kg:(g + 1) * Kg, :, r], seg)
    if b is not None:
        y += b[None, :, None]
    return y


@torch_keywords
def conv1d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1, need_dx=True,
                    need_db=True, algo="auto"):
    """Gradients of :func:`conv1d` (NumPy): (dx or None, dw, db or None)."""
    p, dtype = conv1d_inputs(x, w, None, stride, padding, dilation, groups, algo, dy=dy)
    G, Kg, Cg = p.groups, p.K // p.groups, p.C // p.groups
    xp = np.pad(x, ((0, 0), (0, 0), (p.pad_left, p.pad_right))).astype(dtype, copy=False)
    dxp = np.zeros(xp.shape, dtype)
    dw = np.zeros(w.shape, dtype)
    for g in range(G):
        dyg = dy[:, g * Kg:(g + 1) * Kg]
        for r in range(p.S):
            t = _tap(p, r)
            dw[g * Kg:(g + 1) * Kg, :, r] = np.einsum("nkl,ncl->kc", dyg, xp[:, g * Cg:(g + 1) * Cg, t])
            dxp[:, g * Cg:(g + 1) * Cg, t] += np.einsum("kc,nkl->ncl", w[g * Kg:(g + 1) * Kg, :, r], dyg)
    dx = dxp[:, :, p.pad_left:p.pad_left + p.W].copy() if need_dx else None
    db = dy.sum(axis=(0, 2)).astype(dtype) if need_db else None
    return dx, dw, db
