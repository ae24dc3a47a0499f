"""Constant folding: ONNX operators evaluated in NumPy at load time.

Exporters write the arithmetic of shapes into the graph (Shape -> Gather ->
Unsqueeze -> Concat -> Reshape, for ``x.view(x.size(0), -1)`` or a channel
shuffle). For a fixed input size every such value is a constant: the importer
evaluates a node here whenever all its inputs are constants, and only the
nodes that touch the data become layers. Each function takes the conversion
context (attributes, opset, error reporting) and the input arrays (None for an
omitted optional input) and returns the list of output arrays.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FOLD", "slice_params", "axes_arg", "split_sizes", "normalize_axis"]

INT64_MAX = 2**63 - 1


def normalize_axis(ctx, axis, ndim, what="axis"):
    axis = int(axis)
    if not -ndim <= axis < max(ndim, 1):
        raise ctx.unsupported(what, f"axis {axis} is out of range for rank {ndim}")
    return axis % max(ndim, 1)


def axes_arg(ctx, inputs, index, ndim, default=None):
    """Axes given as the attribute ``axes`` (older opsets) or as input ``index`` (newer)."""
    axes = ctx.attr("axes", None)
    if axes is None and len(inputs) > index and inputs[index] is not None:
        axes = [int(a) for a in np.asarray(inputs[index]).reshape(-1)]
    if axes is None:
        return default
    return [normalize_axis(ctx, a, ndim, "axes") for a in axes]


def slice_params(ctx, shape, starts, ends, axes=None, steps=None):
    """ONNX Slice arguments as Python slices: [(axis, start, stop or None, step)]."""
    starts = [int(v) for v in np.asarray(starts).reshape(-1)]
    ends = [int(v) for v in np.asarray(ends).reshape(-1)]
    n = len(starts)
    axes = list(range(n)) if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
    steps = [1] * n if steps is None else [int(s) for s in np.asarray(steps).reshape(-1)]
    if not len(ends) == len(axes) == len(steps) == n:
        raise ctx.unsupported("starts", "starts, ends, axes and steps differ in length")
    out = []
    for a, s, e, st in zip(axes, starts, ends, steps):
        a = normalize_axis(ctx, a, len(shape), "axes")
        dim = shape[a]
        if st == 0:
            raise ctx.unsupported("steps", "a step of 0")
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
        out.append((a, s, None if e < 0 else e, st))
    return out


def split_sizes(ctx, dim, inputs, n_out):
    """The piece sizes of a Split: attribute ``split`` / input 1 / ``num_outputs`` / equal."""
    split = ctx.attr("split", None)
    if split is None and len(inputs) > 1 and inputs[1] is not None:
        split = [int(v) for v in np.asarray(inputs[1]).reshape(-1)]
    if split is None:
        n = ctx.attr("num_outputs", n_out)
        chunk = -(-dim // n)
        split = [min(chunk, dim - i * chunk) for i in range(n)]
    split = [int(v) for v in split]
    if sum(split) != dim or len(split) != n_out or min(split) < 0:
        raise ctx.unsupported("split", f"sizes {split} do not cut a dimension of {dim} into {n_out}")
    return split


def _np_dtype(ctx, to):
    onnx = ctx.onnx
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(to)))
    except (KeyError, ValueError, TypeError):
        raise ctx.unsupported("to", f"element type {to}") from None


def _shape(ctx, inputs):
    shape = np.array(inputs[0].shape, np.int64)
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    return [shape[start:end]]


def _gather(ctx, inputs):
    data, idx = inputs
    axis = normalize_axis(ctx, ctx.attr("axis", 0), data.ndim)
    idx = np.asarray(idx, np.int64)
    idx = np.where(idx < 0, idx + data.shape[axis], idx)
    return [np.take(data, idx, axis=axis)]


def _unsqueeze(ctx, inputs):
    x = inputs[0]
    axes = ctx.attr("axes", None)
    if axes is None:
        axes = [int(a) for a in np.asarray(inputs[1]).reshape(-1)]
    nd = x.ndim + len(axes)
    axes = sorted(normalize_axis(ctx, a, nd, "axes") for a in axes)
    return [np.expand_dims(x, tuple(axes)) if axes else x]


def _squeeze(ctx, inputs):
    x = inputs[0]
    axes = axes_arg(ctx, inputs, 1, x.ndim)
    if axes is None:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(axes)) if axes else x]


def _slice(ctx, inputs):
    x = inputs[0]
    if ctx.opset < 10:
        starts, ends, axes, steps = ctx.attr("starts"), ctx.attr("ends"), ctx.attr("axes", None), None
    else:
        starts, ends = inputs[1], inputs[2]
        axes = inputs[3] if len(inputs) > 3 else None
        steps = inputs[4] if len(inputs) > 4 else None
    idx = [slice(None)] * x.ndim
    for a, s, e, st in slice_params(ctx, x.shape, starts, ends, axes, steps):
        idx[a] = slice(s, e, st)
    return [x[tuple(idx)]]


def _split(ctx, inputs):
    x = inputs[0]
    axis = normalize_axis(ctx, ctx.attr("axis", 0), x.ndim)
    sizes = split_sizes(ctx, x.shape[axis], inputs, ctx.n_outputs)
    return list(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


def _concat(ctx, inputs):
    axis = normalize_axis(ctx, ctx.attr("axis"), inputs[0].ndim)
    return [np.concatenate(inputs, axis=axis)]


def _constant_of_shape(ctx, inputs):
    value = ctx.attr("value", None)
    value = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return [np.full(tuple(int(v) for v in inputs[0].reshape(-1)), value[0], dtype=value.dtype)]


def _reshape(ctx, inputs):
    x, shape = inputs
    shape = [int(v) for v in shape.reshape(-1)]
    if not ctx.attr("allowzero", 0):
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return [x.reshape(shape)]


def _binary(fn, int_fn=None):
    def fold(ctx, inputs):
        a, b = inputs
        if int_fn is not None and a.dtype.kind in "iu" and b.dtype.kind in "iu":
            return [int_fn(a, b).astype(np.result_type(a, b))]
        return [np.asarray(fn(a, b)).astype(np.result_type(a, b), copy=False)]
    return fold


def _int_div(a, b):
    q = np.abs(a) // np.abs(b)       # ONNX integer Div truncates toward zero
    return np.where((a < 0) != (b < 0), -q, q)


def _range(ctx, inputs):
    start, limit, delta = (np.asarray(v).reshape(()) for v in inputs)
    return [np.arange(start, limit, delta).astype(start.dtype)]


def _transpose(ctx, inputs):
    perm = ctx.attr("perm", None)
    return [np.transpose(inputs[0], perm)]


def _flatten(ctx, inputs):
    x = inputs[0]
    axis = normalize_axis(ctx, ctx.attr("axis", 1), x.ndim + 1)
    return [x.reshape(int(np.prod(x.shape[:axis])), -1)]


def _where(ctx, inputs):
    c, a, b = inputs
    return [np.where(c, a, b).astype(np.result_type(a, b))]


def _expand(ctx, inputs):
    x, shape = inputs
    shape = tuple(int(v) for v in shape.reshape(-1))
    return [x * np.ones(shape, x.dtype)]


def _unary(fn):
    return lambda ctx, inputs: [np.asarray(fn(inputs[0])).astype(inputs[0].dtype, copy=False)]


def _cast(ctx, inputs):
    return [inputs[0].astype(_np_dtype(ctx, ctx.attr("to")))]


def _identity(ctx, inputs):
    return [inputs[0]]


def _reduce(fn):
    def fold(ctx, inputs):
        x = inputs[0]
        axes = axes_arg(ctx, inputs, 1, x.ndim)
        keep = bool(ctx.attr("keepdims", 1))
        return [np.asarray(fn(x, axis=None if axes is None else tuple(axes), keepdims=keep))]
    return fold


#: op type -> fold function, for nodes whose inputs are all constants
FOLD = {
    "Shape": _shape,
    "Size": lambda ctx, inputs: [np.array(inputs[0].size, np.int64)],
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Slice": _slice,
    "Split": _split,
    "Concat": _concat,
    "ConstantOfShape": _constant_of_shape,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Flatten": _flatten,
    "Cast": _cast,
    "Identity": _identity,
    "Dropout": _identity,
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _binary(np.divide, _int_div),
    "Mod": _binary(np.fmod),
    "Pow": _binary(np.power),
    "Min": _binary(np.minimum),
    "Max": _binary(np.maximum),
    "Equal": lambda ctx, i: [np.equal(i[0], i[1])],
    "Less": lambda ctx, i: [np.less(i[0], i[1])],
    "Greater": lambda ctx, i: [np.greater(i[0], i[1])],
    "Not": lambda ctx, i: [np.logical_not(i[0])],
    "Where": _where,
    "Expand": _expand,
    "Range": _range,
    "Neg": _unary(np.negative),
    "Abs": _unary(np.abs),
    "Floor": _unary(np.floor),
    "Ceil": _unary(np.ceil),
    "Sqrt": _unary(np.sqrt),
    "ReduceProd": _reduce(np.prod),
    "ReduceSum": _reduce(np.sum),
    "ReduceMean": _reduce(np.mean),
}
