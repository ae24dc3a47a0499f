"""The whole argument check of an operator, shared by its native version and its
NumPy reference, so both accept and reject the same calls with the same messages:
``(geometry, dtype)`` from the arrays and options of the call."""

from __future__ import annotations

from .base import check_algo, check_array, common_dtype
from .geometry import check_shape, check_winograd
from .geometry_extra import conv1d_params, conv_transpose_params, deform_params


def _arrays(required, optional):
    """Check the arrays (``{name: (array, ndim)}``; optional ones may be None), in order,
    then that they share one float dtype; returns it."""
    for name, (a, nd) in required.items():
        check_array(a, name, nd)
    for name, (a, nd) in optional.items():
        if a is not None:
            check_array(a, name, nd)
    return common_dtype(**{n: a for n, (a, _) in {**required, **optional}.items()})


def conv1d_inputs(x, w, b, stride, padding, dilation, groups, algo, dy=None):
    """conv1d / conv1d_backward: x (N, C, L), w (K, C/groups, R), b (K,), dy (N, K, Q)."""
    dtype = _arrays(dict(x=(x, 3), w=(w, 3)), dict(b=(b, 1), dy=(dy, 3)))
    check_algo(algo)
    p = conv1d_params(x.shape, w.shape, stride, padding, dilation, groups)
    if b is not None:
        check_shape(b, (p.K,), "b")
    if dy is not None:
        check_shape(dy, (p.N, p.K, p.Q), "dy")
    if algo == "winograd":
        check_winograd(p)     # never a 1 x R kernel: a clear error
    return p, dtype


def conv_transpose_inputs(x, w, b, stride, padding, output_padding, groups, dilation, algo,
                          dy=None):
    """conv_transpose2d / its backward: x (N, C_in, H, W), w (C_in, C_out/groups, R, S)."""
    dtype = _arrays(dict(x=(x, 4), w=(w, 4)), dict(b=(b, 1), dy=(dy, 4)))
    check_algo(algo)
    t = conv_transpose_params(x.shape, w.shape, stride, padding, output_padding, groups,
                              dilation)
    if b is not None:
        check_shape(b, (t.y_shape[1],), "b")
    if dy is not None:
        check_shape(dy, t.y_shape, "dy")
    if algo == "winograd" and t.conv is not None:
        check_winograd(t.conv)
    return t, dtype


def deform_inputs(x, offset, w, b, stride, padding, dilation, mask, dy=None):
    """deform_conv2d / its backward, torchvision's layout."""
    dtype = _arrays(dict(x=(x, 4), offset=(offset, 4), w=(w, 4)),
                    dict(b=(b, 1), mask=(mask, 4), dy=(dy, 4)))
    p = deform_params(x.shape, offset.shape, w.shape, stride, padding, dilation,
                      None if mask is None else mask.shape)
    if b is not None:
        check_shape(b, (p.K,), "b")
    if dy is not None:
        check_shape(dy, (p.N, p.K, p.P, p.Q), "dy")
    return p, dtype


def batch_norm_inputs(x, channel, dy=None, batch_stats=False, required=()):
    """batch_norm_train / batch_norm_affine / batch_norm_backward: x (N, C, H, W), the
    per-channel vectors ``channel`` (``{name: array or None}``) of shape (C,), dy like x;
    the names in ``required`` must not be None. With ``batch_stats``, N*H*W must be at
    least 2 (a variance needs two values). Returns ``(N, C, H*W, dtype)``."""
    missing = [n for n in required if channel.get(n) is None]
    if missing:
        raise TypeError(f"{' and '.join(missing)} must be numpy.ndarray{'s' if len(missing) > 1 else ''} "
                        "of shape (C,), got None")
    dtype = _arrays(dict(x=(x, 4)), dict(dy=(dy, 4), **{n: (v, 1) for n, v in channel.items()}))
    N, C, H, W = x.shape
    for name, v in channel.items():
        if v is not None:
            check_shape(v, (C,), name)
    if dy is not None:
        check_shape(dy, x.shape, "dy")
    if batch_stats and N * H * W < 2:
        raise ValueError(f"batch statistics need more than one value per channel, got input "
                         f"shape {tuple(x.shape)}")
    return N, C, H * W, dtype
