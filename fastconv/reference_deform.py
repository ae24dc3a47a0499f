"""Plain NumPy reference of the deformable convolution (the oracle of
:mod:`fastconv.functional_deform`), written from torchvision's definition: per kernel
tap, the sample positions of every output pixel, the four bilinear corners gathered
with fancy indexing (a corner outside the image counts 0, a sample at h <= -1, h >= H,
w <= -1 or w >= W is 0), times the mask; then a contraction with the weights. The
gradients differentiate the same expressions (``np.add.at`` for the scatter)."""

from __future__ import annotations

import numpy as np

from ._args import deform_inputs
from ._args import torch_keywords

__all__ = ["deform_conv2d", "deform_conv2d_backward"]


def _taps(p, offset, mask):
    """Per tap (r, s): the sample positions h, w (N, C, P, Q) (each channel its offset
    group's) and the mask values m (N, C, P, Q) (ones without a mask)."""
    cpg = p.C // p.offset_groups
    og = np.arange(p.C) // cpg
    base_h = np.arange(p.P)[:, None] * p.stride[0] - p.padding[0]
    base_w = np.arange(p.Q)[None, :] * p.stride[1] - p.padding[1]
    off = offset.reshape(p.N, p.offset_groups, p.R * p.S, 2, p.P, p.Q)
    for r in range(p.R):
        for s in range(p.S):
            t = r * p.S + s
            h = base_h + r * p.dilation[0] + off[:, og, t, 0]
            w = base_w + s * p.dilation[1] + off[:, og, t, 1]
            if mask is None:
                m = np.ones(h.shape, offset.dtype)
            else:
                m = mask.reshape(p.N, p.offset_groups, p.R * p.S, p.P, p.Q)[:, og, t]
            yield r, s, h, w, m


def _corners(x, h, w):
    """The four corners of each sample: [(weight, value, hi, wi, valid)], torchvision's
    bilinear rule (samples outside (-1, H) x (-1, W) get zero weights)."""
    N, C, H, W = x.shape
    inside = (h > -1) & (h < H) & (w > -1) & (w < W)
    h0, w0 = np.floor(h).astype(np.int64), np.floor(w).astype(np.int64)
    lh, lw = h - h0, w - w0
    n = np.arange(N)[:, None, None, None]
    c = np.arange(C)[None, :, None, None]
    out = []
    for hi, wi, wt in ((h0, w0, (1 - lh) * (1 - lw)), (h0, w0 + 1, (1 - lh) * lw),
                       (h0 + 1, w0, lh * (1 - lw)), (h0 + 1, w0 + 1, lh * lw)):
        valid = inside & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
        hc, wc = np.clip(hi, 0, H - 1), np.clip(wi, 0, W - 1)
        out.append((np.where(valid, wt, 0), np.where(valid, x[n, c, hc, wc], 0), (n, c, hc, wc),
                    valid))
    return out


def _cols(x, p, offset, mask):
    """cols (N, C, kh, kw, P, Q): the masked samples."""
    cols = np.zeros((p.N, p.C, p.R, p.S, p.P, p.Q), x.dtype)
    for r, s, h, w, m in _taps(p, offset, mask):
        cols[:, :, r, s] = sum(wt * v for wt, v, _, _ in _corners(x, h, w)) * m
    return cols


@torch_keywords
def deform_conv2d(x, offset, w, b=None, stride=1, padding=0, dilation=1, mask=None):
    """Deformable convolution (NumPy), as ``torchvision.ops.deform_conv2d``."""
    p, dtype = deform_inputs(x, offset, w, b, stride, padding, dilation, mask)
    cols = _cols(x, p, offset, mask)
    G, Kg, Cg = p.groups, p.K // p.groups, p.C // p.groups
    y = np.empty((p.N, p.K, p.P, p.Q), dtype)
    for g in range(G):
        y[:, g * Kg:(g + 1) * Kg] = np.einsum("kcrs,ncrspq->nkpq", w[g * Kg:(g + 1) * Kg],
                                              cols[:, g * Cg:(g + 1) * Cg])
    if b is not None:
        y += b[None, :, None, None]
    return y


@torch_keywords
def deform_conv2d_backward(dy, x, offset, w, stride=1, padding=0, dilation=1, mask=None,
                           need_dx=True, need_db=True):
    """Gradients of :func:`deform_conv2d` (NumPy): (dx, doffset, dmask, dw, db)."""
    p, dtype = deform_inputs(x, offset, w, None, stride, padding, dilation, mask, dy=dy)
    G, Kg, Cg = p.groups, p.K // p.groups, p.C // p.groups
    cols = _cols(x, p, offset, mask)
    dw = np.zeros(w.shape, dtype)
    dcols = np.zeros(cols.shape, dtype)
    for g in range(G):
        ks, cs = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
        dw[ks] = np.einsum("nkpq,ncrspq->kcrs", dy[:, ks], cols[:, cs])
        dcols[:, cs] = np.einsum("kcrs,nkpq->ncrspq", w[ks], dy[:, ks])
    dx = np.zeros(x.shape, dtype)
    doff = np.zeros((p.N, p.offset_groups, p.R * p.S, 2, p.P, p.Q), dtype)
    dm = np.zeros((p.N, p.offset_groups, p.R * p.S, p.P, p.Q), dtype)
    N, C, H, W = x.shape
    for r, s, h, w_, m in _taps(p, offset, mask):
        d = dcols[:, :, r, s]
        corners = _corners(x, h, w_)
        for wt, _, idx, _ in corners:
            np.add.at(dx, idx, wt * d * m)
        # d sample / d h and d w: differences of the corner values (torchvision's
        # coordinate weights: corners outside the image count 0, no "inside" test)
        h0, w0 = np.floor(h), np.floor(w_)
        lh, lw = h - h0, w_ - w0
        h0i, w0i = h0.astype(np.int64), w0.astype(np.int64)
        n = np.arange(N)[:, None, None, None]
        c = np.arange(C)[None, :, None, None]

        def val(hi, wi):
            ok = (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
            return np.where(ok, x[n, c, np.clip(hi, 0, H - 1), np.clip(wi, 0, W - 1)], 0)

        v00, v01 = val(h0i, w0i), val(h0i, w0i + 1)
        v10, v11 = val(h0i + 1, w0i), val(h0i + 1, w0i + 1)
        gh = (lw * (v11 - v01) + (1 - lw) * (v10 - v00)) * d * m
        gw = (lh * (v11 - v10) + (1 - lh) * (v01 - v00)) * d * m
        sample = sum(wt_ * v for wt_, v, _, _ in corners)
        t = r * p.S + s
        for o in range(p.offset_groups):
            cs = slice(o * (C // p.offset_groups), (o + 1) * (C // p.offset_groups))
            doff[:, o, t, 0] = gh[:, cs].sum(axis=1)
            doff[:, o, t, 1] = gw[:, cs].sum(axis=1)
            dm[:, o, t] = (sample * d)[:, cs].sum(axis=1)
    db = dy.sum(axis=(0, 2, 3)).astype(dtype) if need_db else None
    return (dx if need_dx else None, doff.reshape(offset.shape), dm.reshape(mask.shape)
            if mask is not None else None, dw, db)
