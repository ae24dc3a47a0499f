"""ONNX operators -> fastconv.nn layers.

Each converter reads one node through the conversion context ``ctx`` (see
:class:`fastconv.onnx.importer._Context`) and emits one or more layers with
``ctx.emit(layer, input names, output names)``. Operands that are constants
(initializers, Constant nodes, folded shape arithmetic) are read with
``ctx.const`` and become the layers' parameters; initializers stay trainable.
:data:`ATTRS` lists the attributes each operator may carry; any other one is an
:class:`UnsupportedOperator` naming the op, the node and the attribute.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from .fold import FOLD, axes_arg, normalize_axis, slice_params, split_sizes

__all__ = ["CONVERT", "ATTRS"]


def _reshape_to(ctx, x, shape, out):
    """Emit a Reshape of dyn value ``x`` to static ``shape`` (found at load), batch axis free."""
    shape = tuple(int(s) for s in shape)
    target = (-1,) + shape[1:] if len(shape) >= 1 else shape
    return ctx.emit(nn.Reshape(target, dtype=ctx.dtype), [x], [out], suffix="reshape")


def _spatial(ctx, name, default, n=2):
    v = ctx.attr(name, None)
    v = [default] * n if v is None else [int(a) for a in v]
    if len(v) != n:
        raise ctx.unsupported(name, f"{len(v)} values given for a 2-d (NCHW) operator")
    return v


def _window_pads(ctx, in_hw, kernel, strides, dilations, ceil_mode=False):
    """(top, left, bottom, right) from ``pads`` or ``auto_pad``, for the known input size."""
    auto = ctx.attr("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        pads = _spatial(ctx, "pads", 0, 4)
        if min(pads) < 0:
            raise ctx.unsupported("pads", f"negative padding {pads}")
        return pads
    if auto == "VALID":
        return [0, 0, 0, 0]
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.unsupported("auto_pad", f"value {auto!r}")
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin + end


def _pool_out(size, pb, pe, dk, s, ceil):
    """ONNX / PyTorch pooling output size (ceil: windows starting in the right padding dropped)."""
    num = size + pb + pe - dk
    if not ceil:
        return num // s + 1
    out = -(-num // s) + 1
    if (out - 1) * s >= size + pb:
        out -= 1
    return out


# ---------------------------------------------------------------- convolution, pooling


def conv(ctx):
    x = ctx.dyn(0)
    w = ctx.const(1, "W")
    if w.ndim != 4:
        raise ctx.unsupported("kernel_shape", f"a {w.ndim - 2}-d convolution (only 2-d, NCHW)")
    b = ctx.const(2, "B") if ctx.has(2) else None
    K, Cg, R, S = w.shape
    groups = int(ctx.attr("group", 1))
    ks = _spatial(ctx, "kernel_shape", None)
    if ks != [None, None] and ks != [R, S]:
        raise ctx.unsupported("kernel_shape", f"{ks} disagrees with the weight shape {w.shape}")
    strides, dil = _spatial(ctx, "strides", 1), _spatial(ctx, "dilations", 1)
    N, C, H, W = ctx.shape(0)
    t, left, bot, right = _window_pads(ctx, (H, W), (R, S), strides, dil)
    if (t, left) != (bot, right):
        x = ctx.emit(nn.Pad2D((left, right, t, bot), dtype=ctx.dtype), [x], suffix="pad")[0]
        t = left = 0
    layer = nn.Conv2D(C, K, (R, S), stride=strides, padding=(t, left), dilation=dil, groups=groups,
                      bias=b is not None, dtype=ctx.dtype, seed=0)
    layer.weight.data[...] = w
    if b is not None:
        layer.bias.data[...] = b.reshape(K)
    ctx.emit(layer, [x], [ctx.out(0)])


def _pool(ctx, kind):
    x = ctx.dyn(0)
    if ctx.n_outputs > 1:
        raise ctx.unsupported("Indices", "the indices output of MaxPool")
    if len(ctx.shape(0)) != 4:
        raise ctx.unsupported("kernel_shape", "only 2-d (NCHW) pooling")
    ctx.attr("kernel_shape")                     # required
    kernel = _spatial(ctx, "kernel_shape", None)
    strides, dil = _spatial(ctx, "strides", 1), _spatial(ctx, "dilations", 1)
    ceil = bool(ctx.attr("ceil_mode", 0))
    if kind == "avg" and dil != [1, 1]:
        raise ctx.unsupported("dilations", "dilated average pooling")
    if ctx.attr("storage_order", 0):
        raise ctx.unsupported("storage_order", "column-major indices")
    N, C, H, W = ctx.shape(0)
    pads = _window_pads(ctx, (H, W), kernel, strides, dil)
    include = bool(ctx.attr("count_include_pad", 0))
    dk = [d * (k - 1) + 1 for k, d in zip(kernel, dil)]
    out_hw = [_pool_out(sz, pads[i], pads[i + 2], dk[i], strides[i], ceil) for i, sz in enumerate((H, W))]
    symmetric = pads[0] == pads[2] and pads[1] == pads[3]
    if symmetric and all(2 * p <= e for p, e in zip(pads[:2], dk)):
        if kind == "max":
            layer = nn.MaxPool2D(kernel, strides, pads[:2], dil, ceil, dtype=ctx.dtype)
        else:
            layer = nn.AvgPool2D(kernel, strides, pads[:2], ceil, include, dtype=ctx.dtype)
        ctx.emit(layer, [x], [ctx.out(0)])
        return
    # Uneven or wide padding: pad explicitly (far enough for every window), pool without
    # padding, crop to the ONNX output size; average pooling then rescales each window's
    # mean by kernel area / the count ONNX divides by.
    ends = [max(pads[i + 2], (out_hw[i] - 1) * strides[i] + dk[i] - (sz + pads[i]))
            for i, sz in enumerate((H, W))]
    fill = float(np.finfo(ctx.dtype).min) if kind == "max" else 0.0
    x = ctx.emit(nn.Pad2D((pads[1], ends[1], pads[0], ends[0]), fill, dtype=ctx.dtype), [x], suffix="pad")[0]
    if kind == "max":
        layer = nn.MaxPool2D(kernel, strides, 0, dil, dtype=ctx.dtype)
    else:
        layer = nn.AvgPool2D(kernel, strides, 0, dtype=ctx.dtype)
    y = ctx.emit(layer, [x], suffix="pool")[0]
    got = ctx.value_shape(y)[2:]
    last = kind == "max"
    if tuple(got) != tuple(out_hw):
        y = ctx.emit(nn.Slice((0, 0), tuple(out_hw), (2, 3), dtype=ctx.dtype), [y],
                     [ctx.out(0)] if last else None, suffix="crop")[0]
    elif last:
        ctx.emit(nn.Identity(dtype=ctx.dtype), [y], [ctx.out(0)], suffix="out")
    if kind == "avg":
        counts = []
        for i, sz in enumerate((H, W)):
            start = np.arange(out_hw[i]) * strides[i] - pads[i]
            lo, hi = (-pads[i], sz + pads[i + 2]) if include else (0, sz)
            counts.append(np.minimum(start + kernel[i], hi) - np.maximum(start, lo))
        scale = kernel[0] * kernel[1] / np.outer(counts[0], counts[1])
        ctx.emit(nn.Mul(scale[None, None], trainable=False, dtype=ctx.dtype), [y], [ctx.out(0)],
                 suffix="scale")


def global_pool(ctx, kind):
    x = ctx.dyn(0)
    shape = ctx.shape(0)
    if kind == "avg":
        ctx.emit(nn.Mean(tuple(range(2, len(shape))), keepdims=True, dtype=ctx.dtype), [x], [ctx.out(0)])
    elif len(shape) == 4:
        ctx.emit(nn.MaxPool2D(shape[2:], dtype=ctx.dtype), [x], [ctx.out(0)])
    else:
        raise ctx.unsupported("input", "GlobalMaxPool on a non-4-d input")


def reduce_mean(ctx):
    x = ctx.dyn(0)
    nd = len(ctx.shape(0))
    axes = axes_arg(ctx, [None] + [ctx.const(i, "axes") if ctx.has(i) else None for i in (1,)], 1, nd)
    if axes is None or not axes:
        if ctx.attr("noop_with_empty_axes", 0):
            ctx.emit(nn.Identity(dtype=ctx.dtype), [x], [ctx.out(0)])
            return
        axes = list(range(nd))
    keep = bool(ctx.attr("keepdims", 1))
    if nd == 4 and sorted(axes) == [2, 3] and not keep:
        layer = nn.GlobalAvgPool2D(dtype=ctx.dtype)
    else:
        layer = nn.Mean(tuple(axes), keepdims=keep, dtype=ctx.dtype)
    ctx.emit(layer, [x], [ctx.out(0)])


def batchnorm(ctx):
    x = ctx.dyn(0)
    if ctx.n_outputs > 1 or ctx.attr("training_mode", 0):
        raise ctx.unsupported("training_mode", "BatchNormalization's training outputs")
    scale, bias, mean, var = (ctx.const(i, n) for i, n in zip(range(1, 5), ("scale", "B", "mean", "var")))
    C = scale.size
    shape = ctx.shape(0)
    momentum = min(max(1.0 - float(ctx.attr("momentum", 0.9)), 0.0), 1.0)
    layer = nn.BatchNorm2D(C, eps=float(ctx.attr("epsilon", 1e-5)), momentum=momentum, dtype=ctx.dtype)
    layer.weight.data[...] = scale.reshape(C)
    layer.bias.data[...] = bias.reshape(C)
    layer.running_mean[...] = mean.reshape(C)
    layer.running_var[...] = var.reshape(C)
    layer.eval()
    if len(shape) == 4:
        ctx.emit(layer, [x], [ctx.out(0)])
    elif len(shape) in (2, 3):
        four = tuple(shape) + (1,) * (4 - len(shape))
        x = _reshape_to(ctx, x, four, None)[0]
        y = ctx.emit(layer, [x])[0]
        _reshape_to(ctx, y, shape, ctx.out(0))
    else:
        raise ctx.unsupported("input", f"BatchNormalization of a {len(shape)}-d input")


# ---------------------------------------------------------------- dense


def _binary_layer(cls, ctx, swap_ok):
    a_const, b_const = ctx.is_const(0), ctx.is_const(1)
    if not a_const and not b_const:
        return ctx.emit(cls(dtype=ctx.dtype), [ctx.dyn(0), ctx.dyn(1)], [ctx.out(0)])
    if a_const:
        c, x, reverse = ctx.value(0), ctx.dyn(1), not swap_ok
    else:
        c, x, reverse = ctx.value(1), ctx.dyn(0), False
    arr = ctx.const(0 if a_const else 1, "B")
    return ctx.emit(cls(arr, reverse=reverse, trainable=c.trainable, dtype=ctx.dtype), [x], [ctx.out(0)])


def matmul(ctx):
    if ctx.is_const(1) and not ctx.is_const(0):
        w = ctx.const(1, "B")
        if w.ndim == 2 and len(ctx.shape(0)) == 2:
            layer = nn.Linear(w.shape[0], w.shape[1], bias=False, dtype=ctx.dtype, seed=0)
            layer.weight.data[...] = w.T
            layer.weight.requires_grad = ctx.value(1).trainable
            return ctx.emit(layer, [ctx.dyn(0)], [ctx.out(0)])
    return _binary_layer(nn.MatMul, ctx, swap_ok=False)


def gemm(ctx):
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    a = ctx.dyn(0)
    if ctx.attr("transA", 0):
        a = ctx.emit(nn.Transpose((1, 0), dtype=ctx.dtype), [a], suffix="transA")[0]
    c = ctx.const(2, "C") if ctx.has(2) else None
    if not ctx.is_const(1):
        b = ctx.dyn(1)
        if ctx.attr("transB", 0):
            b = ctx.emit(nn.Transpose((1, 0), dtype=ctx.dtype), [b], suffix="transB")[0]
        y = ctx.emit(nn.MatMul(dtype=ctx.dtype), [a, b], suffix="matmul")[0]
        if alpha != 1.0:
            y = ctx.emit(nn.Mul(np.array(alpha), trainable=False, dtype=ctx.dtype), [y], suffix="alpha")[0]
        layer, bias_rest = None, c
    else:
        w = ctx.const(1, "B")
        w = w if ctx.attr("transB", 0) else w.T          # (out, in)
        out_f, in_f = w.shape
        vector_c = c is not None and c.ndim <= 2 and (c.ndim < 2 or c.shape[0] == 1)
        layer = nn.Linear(in_f, out_f, bias=vector_c, dtype=ctx.dtype, seed=0)
        layer.weight.data[...] = alpha * w
        if vector_c:
            layer.bias.data[...] = beta * np.broadcast_to(c.reshape(-1), (out_f,))
        bias_rest = None if vector_c else c
        if bias_rest is None:
            return ctx.emit(layer, [a], [ctx.out(0)])
        y = ctx.emit(layer, [a], suffix="linear")[0]
    if bias_rest is None:
        return ctx.emit(nn.Identity(dtype=ctx.dtype), [y], [ctx.out(0)], suffix="out")
    return ctx.emit(nn.Add(beta * bias_rest, dtype=ctx.dtype), [y], [ctx.out(0)], suffix="bias")


# ---------------------------------------------------------------- activations


def clip(ctx):
    if ctx.opset < 11:
        lo, hi = ctx.attr("min", None), ctx.attr("max", None)
    else:
        lo = float(ctx.const(1, "min").reshape(())) if ctx.has(1) else None
        hi = float(ctx.const(2, "max").reshape(())) if ctx.has(2) else None
    if lo == 0.0 and hi is None:
        layer = nn.ReLU(dtype=ctx.dtype)
    elif lo == 0.0 and hi == 6.0:
        layer = nn.ReLU6(dtype=ctx.dtype)
    else:
        lo = None if lo is None or lo <= float(np.finfo(np.float32).min) else lo
        hi = None if hi is None or hi >= float(np.finfo(np.float32).max) else hi
        layer = nn.Clip(lo, hi, dtype=ctx.dtype)
    ctx.emit(layer, [ctx.dyn(0)], [ctx.out(0)])


def softmax(ctx, cls):
    x = ctx.dyn(0)
    shape = ctx.shape(0)
    nd = len(shape)
    axis = normalize_axis(ctx, ctx.attr("axis", -1 if ctx.opset >= 13 else 1), nd)
    if ctx.opset >= 13 or axis == nd - 1:
        return ctx.emit(cls(axis, dtype=ctx.dtype), [x], [ctx.out(0)])
    # opset < 13: the input is seen as 2-d, (prod(shape[:axis]), prod(shape[axis:]))
    flat = (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
    x = _reshape_to(ctx, x, flat, None)[0]
    y = ctx.emit(cls(-1, dtype=ctx.dtype), [x])[0]
    _reshape_to(ctx, y, shape, ctx.out(0))


def _simple(factory):
    def convert(ctx):
        ctx.emit(factory(ctx), [ctx.dyn(0)], [ctx.out(0)])
    return convert


# ---------------------------------------------------------------- shapes


def concat(ctx):
    names = [ctx.dyn(i, "inputs") for i in range(ctx.n_inputs)]
    axis = int(ctx.attr("axis"))
    ctx.emit(nn.Cat(axis, dtype=ctx.dtype), names, [ctx.out(0)])


def reshape(ctx):
    x = ctx.dyn(0)
    target = [int(v) for v in ctx.const(1, "shape").reshape(-1)]
    shape = ctx.shape(0)
    if not ctx.attr("allowzero", 0):
        target = [shape[i] if v == 0 else v for i, v in enumerate(target)]
    try:
        static = np.empty(shape, np.bool_).reshape(target).shape
    except ValueError:
        raise ctx.unsupported("shape", f"{target} does not fit an input of shape {tuple(shape)}") from None
    _reshape_to(ctx, x, static, ctx.out(0))


def _static_shape_op(ctx, fold_fn):
    """Unsqueeze / Squeeze / Flatten of a data tensor: a Reshape to the shape found at load."""
    dummy = np.empty(ctx.shape(0), np.bool_)
    consts = [dummy] + [ctx.const(i, "axes") if ctx.has(i) else None for i in range(1, ctx.n_inputs)]
    static = fold_fn(ctx, consts)[0].shape
    _reshape_to(ctx, ctx.dyn(0), static, ctx.out(0))


def flatten(ctx):
    shape = ctx.shape(0)
    axis = normalize_axis(ctx, ctx.attr("axis", 1), len(shape) + 1)
    if axis == 1 and len(shape) >= 2:
        return ctx.emit(nn.Flatten(dtype=ctx.dtype), [ctx.dyn(0)], [ctx.out(0)])
    static = (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
    _reshape_to(ctx, ctx.dyn(0), static, ctx.out(0))


def transpose(ctx):
    nd = len(ctx.shape(0))
    perm = ctx.attr("perm", None)
    perm = list(range(nd))[::-1] if perm is None else [int(p) for p in perm]
    ctx.emit(nn.Transpose(perm, dtype=ctx.dtype), [ctx.dyn(0)], [ctx.out(0)])


def slice_(ctx):
    shape = ctx.shape(0)
    if ctx.opset < 10:
        args = (ctx.attr("starts"), ctx.attr("ends"), ctx.attr("axes", None), None)
    else:
        args = [ctx.const(i, n) if ctx.has(i) else None
                for i, n in zip(range(1, 5), ("starts", "ends", "axes", "steps"))]
    params = slice_params(ctx, shape, *args)
    axes, starts, ends, steps = zip(*params) if params else ((), (), (), ())
    ctx.emit(nn.Slice(starts, ends, axes, steps, dtype=ctx.dtype), [ctx.dyn(0)], [ctx.out(0)])


def split(ctx):
    shape = ctx.shape(0)
    axis = normalize_axis(ctx, ctx.attr("axis", 0), len(shape))
    consts = [None] + ([ctx.const(1, "split")] if ctx.has(1) else [])
    sizes = split_sizes(ctx, shape[axis], consts, ctx.n_outputs)
    ctx.emit(nn.Split(sizes, axis, dtype=ctx.dtype), [ctx.dyn(0)], [ctx.out(k) for k in range(ctx.n_outputs)])


def pad(ctx):
    mode = ctx.attr("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise ctx.unsupported("mode", f"{mode!r} padding (only 'constant')")
    nd = len(ctx.shape(0))
    if ctx.opset < 11:
        pads, value = ctx.attr("pads"), float(ctx.attr("value", 0.0))
    else:
        pads = ctx.const(1, "pads").reshape(-1)
        value = float(ctx.const(2, "constant_value").reshape(())) if ctx.has(2) else 0.0
    pads = [int(p) for p in pads]
    if np.isinf(value):          # e.g. -inf before a max: the dtype's extreme acts the same
        value = float(np.finfo(ctx.dtype).max) * (1 if value > 0 else -1)
    axes = list(range(nd))
    if ctx.has(3):
        axes = [normalize_axis(ctx, a, nd, "axes") for a in ctx.const(3, "axes").reshape(-1)]
    begin, end = dict(zip(axes, pads[:len(axes)])), dict(zip(axes, pads[len(axes):]))
    if any(begin.get(a, 0) or end.get(a, 0) for a in range(nd - 2)) or min(pads, default=0) < 0:
        raise ctx.unsupported("pads", f"{pads}: only non-negative padding of the last two axes")
    layer = nn.Pad2D((begin.get(nd - 1, 0), end.get(nd - 1, 0), begin.get(nd - 2, 0), end.get(nd - 2, 0)),
                     value, dtype=ctx.dtype)
    ctx.emit(layer, [ctx.dyn(0)], [ctx.out(0)])


def identity(ctx):
    if ctx.op == "Dropout" and ctx.n_outputs > 1:
        raise ctx.unsupported("mask", "Dropout's mask output")
    ctx.emit(nn.Identity(dtype=ctx.dtype), [ctx.dyn(0)], [ctx.out(0)])


def cast(ctx):
    to = int(ctx.attr("to"))
    if np.dtype(ctx.onnx.helper.tensor_dtype_to_np_dtype(to)) != ctx.dtype:
        raise ctx.unsupported("to", f"a cast of the data to element type {to}")
    identity(ctx)


_CONV_ATTRS = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}
_POOL_ATTRS = {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides"}

#: op type -> (converter, allowed attributes)
CONVERT = {
    "Conv": (conv, _CONV_ATTRS),
    "MaxPool": (lambda ctx: _pool(ctx, "max"), _POOL_ATTRS | {"storage_order"}),
    "AveragePool": (lambda ctx: _pool(ctx, "avg"), _POOL_ATTRS | {"count_include_pad"}),
    "GlobalAveragePool": (lambda ctx: global_pool(ctx, "avg"), set()),
    "GlobalMaxPool": (lambda ctx: global_pool(ctx, "max"), set()),
    "ReduceMean": (reduce_mean, {"axes", "keepdims", "noop_with_empty_axes"}),
    "BatchNormalization": (batchnorm, {"epsilon", "momentum", "training_mode"}),
    "Gemm": (gemm, {"alpha", "beta", "transA", "transB"}),
    "MatMul": (matmul, set()),
    "Add": (lambda ctx: _binary_layer(nn.Add, ctx, True), set()),
    "Sub": (lambda ctx: _binary_layer(nn.Sub, ctx, False), set()),
    "Mul": (lambda ctx: _binary_layer(nn.Mul, ctx, True), set()),
    "Div": (lambda ctx: _binary_layer(nn.Div, ctx, False), set()),
    "Relu": (_simple(lambda ctx: nn.ReLU(dtype=ctx.dtype)), set()),
    "LeakyRelu": (_simple(lambda ctx: nn.LeakyReLU(float(ctx.attr("alpha", 0.01)), dtype=ctx.dtype)),
                  {"alpha"}),
    "Sigmoid": (_simple(lambda ctx: nn.Sigmoid(dtype=ctx.dtype)), set()),
    "Tanh": (_simple(lambda ctx: nn.Tanh(dtype=ctx.dtype)), set()),
    "HardSigmoid": (_simple(lambda ctx: nn.HardSigmoid(float(ctx.attr("alpha", 0.2)),
                                                       float(ctx.attr("beta", 0.5)), dtype=ctx.dtype)),
                    {"alpha", "beta"}),
    "HardSwish": (_simple(lambda ctx: nn.HardSwish(dtype=ctx.dtype)), set()),
    "Clip": (clip, {"min", "max"}),
    "Softmax": (lambda ctx: softmax(ctx, nn.Softmax), {"axis"}),
    "LogSoftmax": (lambda ctx: softmax(ctx, nn.LogSoftmax), {"axis"}),
    "Concat": (concat, {"axis"}),
    "Reshape": (reshape, {"allowzero"}),
    "Flatten": (flatten, {"axis"}),
    "Transpose": (transpose, {"perm"}),
    "Squeeze": (lambda ctx: _static_shape_op(ctx, FOLD["Squeeze"]), {"axes"}),
    "Unsqueeze": (lambda ctx: _static_shape_op(ctx, FOLD["Unsqueeze"]), {"axes"}),
    "Slice": (slice_, {"starts", "ends", "axes"}),
    "Split": (split, {"axis", "split", "num_outputs"}),
    "Pad": (pad, {"mode", "pads", "value"}),
    "Dropout": (identity, {"seed", "ratio", "is_test"}),
    "Identity": (identity, set()),
    "Cast": (cast, {"to", "saturate", "round_mode"}),
}

