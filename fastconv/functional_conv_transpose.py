"""Transposed convolution (``conv_transpose2d``), native, as the adjoint of conv2d.

A transposed convolution of x (N, Cin, H, W) with w (Cin, Cout/groups, kh, kw) is the
backward-data pass of the convolution that maps a (N, Cout, H_out, W_out) image to
(N, Cin, H, W) with the same weights, stride, padding, dilation and groups
(:func:`fastconv._args.conv_transpose_params` gives that convolution, ``p``). So the
three passes are conv2d's own kernels with the roles swapped:

* forward:          y  = conv2d backward-data of "dy" = x          (algo pass "data")
* input gradient:   dx = conv2d forward of dy                      (algo pass "forward")
* weight gradient:  dw = conv2d backward-weight, "dy" = x, "x" = dy (algo pass "weight")

with the same algorithm choice (:func:`fastconv._dispatch.choose_algo`) as conv2d.
The end padding of that convolution carries ``output_padding``; rows and columns of
output padding that no input element reaches (possible when dilation > stride) are
cropped off it and left zero here.
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K
from . import _runtime
from ._args import conv_transpose_inputs
from ._args import contiguous, torch_keywords
from ._dispatch import choose_algo, conv_work, finite_safe
from .functional_convpass import run_pass

__all__ = ["conv_transpose2d", "conv_transpose2d_backward"]



def _flat(a):
    return a.reshape(-1)


def _alloc(shape, dtype, what):
    try:
        return np.empty(shape, dtype=dtype)
    except (MemoryError, ValueError) as e:
        raise MemoryError(f"cannot allocate {what} of shape {tuple(shape)}") from e


def _crop(a, p):
    """``a`` (N, C, H_out, W_out) cut to the convolution's p.H x p.W (contiguous)."""
    if a.shape[2:] == (p.H, p.W):
        return contiguous(a)
    return np.ascontiguousarray(a[:, :, : p.H, : p.W])


@torch_keywords
def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     algo="auto"):
    """2-d transposed convolution (the adjoint of conv2d), as
    ``torch.nn.functional.conv_transpose2d``.

    x: (N, C_in, H, W); w: (C_in, C_out/groups, kh, kw) (PyTorch's layout); b: (C_out,) or
    None. Returns y: (N, C_out, H_out, W_out) with H_out = (H-1)*stride - 2*padding +
    dilation*(kh-1) + output_padding + 1 (likewise W_out). ``output_padding`` must be
    smaller than stride or dilation. ``algo`` as :func:`fastconv.conv2d` (it picks the
    kernels of the backward-data pass of the matching convolution).
    """
    t, dtype = conv_transpose_inputs(x, w, b, stride, padding, output_padding, groups, dilation, algo)
    y = _alloc(t.y_shape, dtype, "conv_transpose2d output")
    N, Cout, Ho, Wo = t.y_shape
    if N == 0:
        return y
    p = t.conv
    nt = _runtime.kernel_threads(conv_work(p) if p is not None else y.size)
    if p is None:
        y[...] = 0
    else:
        x, w = contiguous(x), contiguous(w)
        full = (p.H, p.W) == (Ho, Wo)
        out = y if full else _alloc((N, Cout, p.H, p.W), dtype, "conv_transpose2d workspace")
        chosen, = finite_safe((choose_algo(algo, p, "data", dtype),), algo, x, w)
        run_pass("data", chosen, p, x, w, out, nt)
        if not full:
            y[...] = 0
            y[:, :, : p.H, : p.W] = out
    if b is not None:
        K.bias_add(N, Cout, Ho * Wo, contiguous(b), _flat(y), nt)
    return y


@torch_keywords
def conv_transpose2d_backward(dy, x, w, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1, need_dx=True, need_db=True, algo="auto"):
    """Gradients of :func:`conv_transpose2d` with respect to x, w and b.

    dy: (N, C_out, H_out, W_out). Returns (dx, dw, db): dx (N, C_in, H, W) or None when
    ``need_dx`` is false, dw (C_in, C_out/groups, kh, kw), db (C_out,) or None when
    ``need_db`` is false.
    """
    t, dtype = conv_transpose_inputs(x, w, None, stride, padding, output_padding, groups, dilation, algo,
                       dy=dy)
    p = t.conv
    N, Cout = t.y_shape[:2]
    dw = np.zeros(w.shape, dtype)
    dx = np.zeros(x.shape, dtype) if need_dx else None
    db = np.zeros(Cout, dtype) if need_db else None
    if N == 0:
        return dx, dw, db
    nt = _runtime.kernel_threads(conv_work(p) if p is not None else dy.size)
    if db is not None:
        K.bias_grad(N, Cout, t.y_shape[2] * t.y_shape[3], _flat(contiguous(dy)), db, nt)
    if p is None:
        return dx, dw, db
    dyc, x, w = _crop(dy, p), contiguous(x), contiguous(w)
    chosen_w, chosen_d = finite_safe((choose_algo(algo, p, "weight", dtype),
                                      choose_algo(algo, p, False, dtype)), algo, dyc, x, w)
    # conv2d's weight gradient with its "dy" = our x and its "x" = our dy (no bias)
    run_pass("weight", chosen_w, p, x, dyc, dw, nt)
    if dx is not None:
        run_pass("forward", chosen_d, p, dyc, w, dx, nt)
    return dx, dw, db
