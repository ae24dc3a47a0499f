"""One convolution pass on conv2d's kernels, for the ops built from them (the
transposed convolution, the 1-d convolution): the one place that maps (pass,
algorithm) to the kernel bindings of :mod:`fastconv._kernels`.

``run_pass(kind, algo, p, ...)`` runs, for the conv2d geometry ``p``
(:class:`fastconv._args.ConvParams`) and an algorithm already chosen by
:func:`fastconv._dispatch.choose_algo`:

* ``"forward"``: y (N, K, P, Q) = conv(x, w) (+ bias);
* ``"data"``:    dx (N, C, H, W) = backward-data of dy;
* ``"weight"``:  dw (K, C/g, R, S) = backward-weight from dy and x (dw overwritten).

``"direct"``, ``"gemm"`` and ``"winograd"`` are whole C kernels; ``"im2col"`` (taken
when fastconv's GEMM has no SIMD kernel on this CPU) unfolds a bounded chunk of images
at a time and multiplies with NumPy's matmul.
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K
from ._dispatch import conv_geom

__all__ = ["NATIVE", "run_pass", "chunk", "WORKSPACE_BYTES"]

#: conv2d's algorithms that are whole C kernels (_kernels.conv2d_<pass>(ALGO_ID[algo], ...)).
NATIVE = ("direct", "gemm", "winograd")
#: Upper bound, in bytes, of the "im2col" path's column workspace (one chunk of images).
WORKSPACE_BYTES = 32 * 2**20


def chunk(p, itemsize):
    """Images per im2col chunk, so the column buffer stays under WORKSPACE_BYTES."""
    per_image = p.C * p.R * p.S * p.P * p.Q * itemsize
    return max(1, min(p.N, WORKSPACE_BYTES // max(per_image, 1)))


def _flat(a):
    return a.reshape(-1)


def run_pass(kind, algo, p, a, w, out, nt, bias=None):
    """Run pass ``kind`` of conv ``p`` with algorithm ``algo``; every array C-contiguous,
    native byte order, one dtype. forward: a = x, out = y, bias or None; data: a = dy,
    out = dx; weight: a = dy, w = x (the pass's second input), out = dw."""
    if algo in NATIVE:
        aid, g = K.ALGO_ID[algo], conv_geom(p)
        if kind == "forward":
            b = bias if bias is not None else np.empty(0, a.dtype)
            K.conv2d_fwd(aid, g, _flat(a), _flat(w), b, _flat(out), nt)
        elif kind == "data":
            K.conv2d_bwd_data(aid, g, _flat(a), _flat(w), _flat(out), nt)
        else:
            K.conv2d_bwd_weight(aid, g, _flat(a), _flat(w), _flat(out), np.empty(0, a.dtype), nt)
        return
    _im2col_pass(kind, p, a, w, out, nt)
    if kind == "forward" and bias is not None:
        K.bias_add(p.N, p.K, p.P * p.Q, bias, _flat(out), nt)


def _im2col_pass(kind, p, a, w, out, nt):
    G, Kg = p.groups, p.K // p.groups
    CRSg, PQ = (p.C // G) * p.R * p.S, p.P * p.Q
    nb = chunk(p, a.itemsize)
    try:
        cols_buf = np.empty((nb, G, CRSg, PQ), a.dtype)
    except (MemoryError, ValueError) as e:
        raise MemoryError(f"cannot allocate the im2col workspace ({nb} images)") from e
    if kind == "weight":
        x, dwg = w, out.reshape(G, Kg, CRSg)
        dwg[...] = 0
    else:
        wg = w.reshape(G, Kg, CRSg)
    for n0 in range(0, p.N, nb):
        n1 = min(p.N, n0 + nb)
        cols = cols_buf[: n1 - n0]
        geom = conv_geom(p, n1 - n0)
        if kind == "data":
            dyv = a[n0:n1].reshape(n1 - n0, G, Kg, PQ)
            for g in range(G):
                np.matmul(wg[g].T, dyv[:, g], out=cols[:, g])
            K.col2im(geom, _flat(cols), _flat(out[n0:n1]), nt)
        elif kind == "forward":
            K.im2col(geom, _flat(a[n0:n1]), _flat(cols), nt)
            yv = out[n0:n1].reshape(n1 - n0, G, Kg, PQ)
            for g in range(G):
                np.matmul(wg[g], cols[:, g], out=yv[:, g])
        else:
            K.im2col(geom, _flat(x[n0:n1]), _flat(cols), nt)
            dyv = a[n0:n1].reshape(n1 - n0, G, Kg, PQ)
            for g in range(G):
                dwg[g] += np.tensordot(dyv[:, g], cols[:, g], axes=([0, 2], [0, 2]))
