"""The 1-d convolution ``conv1d`` (N, C, L), native, and its gradients.

A 1-d convolution is the 2-d one of an (N, C, 1, L) image with a 1 x R kernel: both
reshapes are free views, and conv2d's kernels take H = 1 as it is. The GEMM path
(csrc/conv_gemm.c) is then a 1-d im2col GEMM: each (channel, tap) line of the
implicit column matrix is one run of the (zero-padded) input row, packed straight
into fastconv's SIMD GEMM a bounded column block at a time, with the weights packed
once; the direct path loops over the taps with no workspace. ``algo="auto"`` chooses
per pass as conv2d does (:func:`fastconv._dispatch.choose_algo`). Long sequences are
the GEMM's good case (wide column blocks, the weights reused over every block):
``benchmarks/conv1d_bench.py`` measures it against PyTorch.
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K
from . import _runtime
from ._args import conv1d_inputs
from ._args import contiguous, torch_keywords
from ._dispatch import choose_algo, conv_work, finite_safe
from .functional_convpass import run_pass

__all__ = ["conv1d", "conv1d_backward"]


def _as2d(a):
    return contiguous(a).reshape(a.shape[0], a.shape[1], 1, a.shape[2])


@torch_keywords
def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algo="auto"):
    """1-d convolution (cross-correlation), as ``torch.nn.functional.conv1d``.

    x: (N, C, L); w: (K, C/groups, R); b: (K,) or None. Returns y (N, K, L_out) with
    L_out = floor((L + 2p - d(R-1) - 1)/s) + 1. ``padding``: an int, ``"valid"`` or
    ``"same"`` (stride 1 only). ``algo`` as :func:`fastconv.conv2d`.
    """
    p, dtype = conv1d_inputs(x, w, b, stride, padding, dilation, groups, algo)
    try:
        y = np.empty((p.N, p.K, p.Q), dtype)
    except (MemoryError, ValueError) as e:
        raise MemoryError(f"cannot allocate the conv1d output {(p.N, p.K, p.Q)}") from e
    if p.N == 0:
        return y
    x4, w4 = _as2d(x), _as2d(w)
    bb = contiguous(b) if b is not None else None
    chosen, = finite_safe((choose_algo(algo, p, False, dtype),), algo, x4, w4)
    run_pass("forward", chosen, p, x4, w4, y.reshape(p.y_shape), _runtime.kernel_threads(
        conv_work(p)), bias=bb)
    return y


@torch_keywords
def conv1d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1, need_dx=True,
                    need_db=True, algo="auto"):
    """Gradients of :func:`conv1d` with respect to x, w and b.

    dy: (N, K, L_out). Returns (dx, dw, db): dx (N, C, L) or None when ``need_dx`` is
    false, dw (K, C/groups, R), db (K,) or None when ``need_db`` is false.
    """
    p, dtype = conv1d_inputs(x, w, None, stride, padding, dilation, groups, algo, dy=dy)
    dw = np.zeros(w.shape, dtype)
    dx = np.zeros(x.shape, dtype) if need_dx else None
    db = np.zeros(p.K, dtype) if need_db else None
    if p.N == 0:
        return dx, dw, db
    dy4, x4, w4 = _as2d(dy), _as2d(x), _as2d(w)
    nt = _runtime.kernel_threads(conv_work(p))
    chosen_w, chosen_d = finite_safe((choose_algo(algo, p, "weight", dtype),
                                      choose_algo(algo, p, "data", dtype)), algo, dy4, x4, w4)
    if db is not None:
        K.bias_grad(p.N, p.K, p.Q, dy4.reshape(-1), db, nt)
    run_pass("weight", chosen_w, p, dy4, x4, dw.reshape(p.w_shape), nt)
    if dx is not None:
        run_pass("data", chosen_d, p, dy4, w4, dx.reshape(p.x_shape), nt)
    return dx, dw, db
