"""fastconv.onnx.save: a fastconv.nn network -> an ONNX file.

The network is written with eval-mode semantics (BatchNorm2D with its running
statistics, Dropout as Identity), the batch axis left free ("N"). Every layer of
:mod:`fastconv.nn` and the containers Sequential, Residual, Concat and Graph are
written; each layer is run once on a zero input of the given size while it is
written, so shapes needed by the ONNX operators (and the output's) are known.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from .._args import as_int, conv_padding
from .._fileio import atomic_write
from .errors import ONNXError, require_onnx

__all__ = ["save", "to_model", "DEFAULT_OPSET", "MIN_OPSET"]

DEFAULT_OPSET = 17
MIN_OPSET = 13
_INT64_MAX, _INT64_MIN = 2**63 - 1, -(2**63)


class _Exporter:
    def __init__(self, onnx, opset):
        self.onnx, self.h, self.opset = onnx, onnx.helper, opset
        self.nodes, self.inits, self.count = [], [], 0
        self.names = set()

    def fresh(self, base):
        base = base or "value"
        cand, k = base, 1
        while cand in self.names:
            k += 1
            cand = f"{base}_{k}"
        self.names.add(cand)
        return cand

    def const(self, arr, name):
        name = self.fresh(name)
        self.inits.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def ints(self, values, name):
        return self.const(np.asarray(values, np.int64), name)

    def scalar(self, value, dtype, name):
        return self.const(np.asarray(value, dtype), name)

    def add(self, op, inputs, path, n_out=1, **attrs):
        outs = [self.fresh(f"{path}:{op}" if n_out == 1 else f"{path}:{op}:{k}") for k in range(n_out)]
        self.nodes.append(self.h.make_node(op, list(inputs), outs, name=self.fresh(f"{path}/{op}"), **attrs))
        return outs

    # -- modules -----------------------------------------------------------

    def emit(self, m, ins, path):
        """Write module ``m`` reading values ``ins`` ([(name, array)]); returns its [(name, array)]."""
        for cls in type(m).__mro__:
            fn = getattr(self, "_" + cls.__name__, None)
            if fn is not None and cls.__module__.startswith("fastconv.nn"):
                out = fn(m, ins, path)
                return out if isinstance(out, list) else [out]
        raise TypeError(
            f"fastconv.onnx.save cannot write a {type(m).__name__} layer ({path or 'the model'}): "
            "only the layers and containers of fastconv.nn are known"
        )

    def leaf(self, m, ins, path, op, extra=(), n_out=1, **attrs):
        """One ONNX node for one layer: run the layer on the input arrays for the output arrays."""
        try:
            ys = m.forward(*[a for _, a in ins])
        except ValueError as e:
            if isinstance(e, ONNXError):
                raise
            shapes = ", ".join(str(a.shape) for _, a in ins)
            where = f"layer {path!r} ({type(m).__name__})" if path else f"the model ({type(m).__name__})"
            raise ValueError(f"fastconv.onnx.save: {where} cannot "
                             f"run on input of shape {shapes}: {e} (input_shape is the shape of "
                             "one input without the batch axis, e.g. (3, 32, 32))") from e
        ys = (ys,) if n_out == 1 else tuple(ys)
        names = self.add(op, [n for n, _ in ins] + list(extra), path, n_out, **attrs)
        res = list(zip(names, ys))
        return res if n_out > 1 else res[0]

    def _Sequential(self, m, ins, path):
        for name, child in m.named_children():
            ins = self.emit(child, ins, f"{path}.{name}" if path else name)
        return ins

    def _Residual(self, m, ins, path):
        (y, ya), = self.emit(m.body, ins, f"{path}.body" if path else "body")
        (s, sa), = ins if m.shortcut is None else self.emit(m.shortcut, ins, f"{path}.shortcut" if path else "shortcut")
        return self.add("Add", [y, s], path)[0], ya + sa

    def _Concat(self, m, ins, path):
        outs = [self.emit(b, ins, f"{path}.{n}" if path else n)[0] for n, b in m.named_children()]
        ax = m.axis % outs[0][1].ndim
        return self.add("Concat", [n for n, _ in outs], path, axis=ax)[0], np.concatenate([a for _, a in outs], ax)

    def _Graph(self, m, ins, path):
        env = dict(zip(m.inputs, ins))
        for name, child, nins, nouts in m.nodes:
            outs = self.emit(child, [env[v] for v in nins], f"{path}.{name}" if path else name)
            env.update(zip(nouts, outs))
        return [env[o] for o in m.outputs]

    def _Conv2D(self, m, ins, path):
        t, b, l_, r = conv_padding(m.padding, m.kernel_size, m.dilation, m.stride)
        extra = [self.const(m.weight.data, f"{path}.weight")]
        if m.bias is not None:
            extra.append(self.const(m.bias.data, f"{path}.bias"))
        return self.leaf(m, ins, path, "Conv", extra, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                         dilations=list(m.dilation), pads=[t, l_, b, r], group=m.groups)

    def _MaxPool2D(self, m, ins, path):
        p = list(m.padding)
        return self.leaf(m, ins, path, "MaxPool", kernel_shape=list(m.kernel_size), strides=list(m.stride),
                         pads=p + p, dilations=list(m.dilation), ceil_mode=int(m.ceil_mode))

    def _AvgPool2D(self, m, ins, path):
        p = list(m.padding)
        return self.leaf(m, ins, path, "AveragePool", kernel_shape=list(m.kernel_size), strides=list(m.stride),
                         pads=p + p, ceil_mode=int(m.ceil_mode), count_include_pad=int(m.count_include_pad))

    def _GlobalAvgPool2D(self, m, ins, path):
        y = m.forward(ins[0][1])
        g = self.add("GlobalAveragePool", [ins[0][0]], path)[0]
        return self.add("Flatten", [g], path, axis=1)[0], y

    def _ReLU(self, m, ins, path):
        return self.leaf(m, ins, path, "Relu")

    def _LeakyReLU(self, m, ins, path):
        return self.leaf(m, ins, path, "LeakyRelu", alpha=m.negative_slope)

    def _Sigmoid(self, m, ins, path):
        return self.leaf(m, ins, path, "Sigmoid")

    def _Tanh(self, m, ins, path):
        return self.leaf(m, ins, path, "Tanh")

    def _Identity(self, m, ins, path):
        return self.leaf(m, ins, path, "Identity")

    def _Dropout(self, m, ins, path):
        return self.leaf(m, ins, path, "Identity")

    def _Clip(self, m, ins, path):
        dt = m.dtype
        lo = "" if m.min is None else self.scalar(m.min, dt, f"{path}.min")
        hi = "" if m.max is None else self.scalar(m.max, dt, f"{path}.max")
        return self.leaf(m, ins, path, "Clip", [lo] + ([hi] if hi else []))

    def _HardSigmoid(self, m, ins, path):
        return self.leaf(m, ins, path, "HardSigmoid", alpha=m.alpha, beta=m.beta)

    def _HardSwish(self, m, ins, path):
        if self.opset >= 14:
            return self.leaf(m, ins, path, "HardSwish")
        y = m.forward(ins[0][1])
        hs = self.add("HardSigmoid", [ins[0][0]], path, alpha=1.0 / 6.0, beta=0.5)[0]
        return self.add("Mul", [ins[0][0], hs], path)[0], y

    def _Softmax(self, m, ins, path):
        return self.leaf(m, ins, path, "Softmax", axis=m.axis)

    def _LogSoftmax(self, m, ins, path):
        return self.leaf(m, ins, path, "LogSoftmax", axis=m.axis)

    def _Linear(self, m, ins, path):
        extra = [self.const(m.weight.data, f"{path}.weight")]
        if m.bias is not None:
            extra.append(self.const(m.bias.data, f"{path}.bias"))
        return self.leaf(m, ins, path, "Gemm", extra, transB=1)

    def _Flatten(self, m, ins, path):
        return self.leaf(m, ins, path, "Flatten", axis=1)

    def _BatchNorm2D(self, m, ins, path):
        C, dt = m.num_features, m.dtype
        w = m.weight.data if m.affine else np.ones(C, dt)
        b = m.bias.data if m.affine else np.zeros(C, dt)
        extra = [self.const(w, f"{path}.weight"), self.const(b, f"{path}.bias"),
                 self.const(m.running_mean, f"{path}.running_mean"),
                 self.const(m.running_var, f"{path}.running_var")]
        momentum = 0.9 if m.momentum is None else 1.0 - m.momentum
        return self.leaf(m, ins, path, "BatchNormalization", extra, epsilon=m.eps, momentum=momentum)

    def _binary(self, m, ins, path, op):
        if not m.fixed:
            return self.leaf(m, ins, path, op)
        c = self.const(m._other_array(), f"{path}.other")
        y = m.forward(ins[0][1])
        order = [c, ins[0][0]] if m.reverse else [ins[0][0], c]
        return self.add(op, order, path)[0], y

    def _Add(self, m, ins, path):
        return self._binary(m, ins, path, "Add")

    def _Sub(self, m, ins, path):
        return self._binary(m, ins, path, "Sub")

    def _Mul(self, m, ins, path):
        return self._binary(m, ins, path, "Mul")

    def _Div(self, m, ins, path):
        return self._binary(m, ins, path, "Div")

    def _MatMul(self, m, ins, path):
        return self._binary(m, ins, path, "MatMul")

    def _Cat(self, m, ins, path):
        return self.leaf(m, ins, path, "Concat", axis=m.axis)

    def _Reshape(self, m, ins, path):
        return self.leaf(m, ins, path, "Reshape", [self.ints(m.shape, f"{path}.shape")])

    def _Transpose(self, m, ins, path):
        return self.leaf(m, ins, path, "Transpose", perm=list(m.perm))

    def _Slice(self, m, ins, path):
        ends = [(_INT64_MAX if st > 0 else _INT64_MIN) if e is None else e for e, st in zip(m.ends, m.steps)]
        extra = [self.ints(m.starts, f"{path}.starts"), self.ints(ends, f"{path}.ends"),
                 self.ints(m.axes, f"{path}.axes"), self.ints(m.steps, f"{path}.steps")]
        return self.leaf(m, ins, path, "Slice", extra)

    def _Split(self, m, ins, path):
        return self.leaf(m, ins, path, "Split", [self.ints(m.sizes, f"{path}.split")], n_out=len(m.sizes),
                         axis=m.axis)

    def _Pad2D(self, m, ins, path):
        left, right, top, bottom = m.padding
        nd = ins[0][1].ndim
        pads = [0] * (nd - 2) + [top, left] + [0] * (nd - 2) + [bottom, right]
        value = self.scalar(m.value, m.dtype, f"{path}.value")
        return self.leaf(m, ins, path, "Pad", [self.ints(pads, f"{path}.pads"), value], mode="constant")

    def _Mean(self, m, ins, path):
        if self.opset >= 18:
            return self.leaf(m, ins, path, "ReduceMean", [self.ints(m.axes, f"{path}.axes")],
                             keepdims=int(m.keepdims))
        return self.leaf(m, ins, path, "ReduceMean", axes=list(m.axes), keepdims=int(m.keepdims))


def _shapes(input_shape, n):
    if input_shape is None:
        raise TypeError("save needs input_shape=, the shape of one input without the batch axis")
    shapes = list(input_shape)
    if shapes and all(not isinstance(s, (tuple, list)) for s in shapes):
        shapes = [shapes]
    if len(shapes) != n:
        raise ValueError(f"input_shape must give one shape per model input ({n}), got {input_shape!r}")
    return [tuple(as_int(d, "input_shape") for d in s) for s in shapes]


def to_model(model, input_shape, opset=DEFAULT_OPSET):
    """The ``onnx.ModelProto`` of ``model`` (see :func:`save`), checked by ``onnx.checker``."""
    onnx = require_onnx()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a fastconv.nn.Module, got {type(model).__name__}")
    opset = as_int(opset, "opset")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be in [{MIN_OPSET}, {newest}], got {opset}")
    names = list(model.inputs) if isinstance(model, nn.Graph) else ["input"]
    shapes = _shapes(input_shape, len(names))
    elem = onnx.helper.np_dtype_to_tensor_dtype(model.dtype)
    ex = _Exporter(onnx, opset)
    ex.names.update(names)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        ins = [(n, np.zeros((1,) + s, model.dtype)) for n, s in zip(names, shapes)]
        with np.errstate(all="ignore"):
            outs = ex.emit(model, ins, "")
    finally:
        for m, mode in modes:
            m.__dict__["training"] = mode
    out_names = list(model.outputs) if isinstance(model, nn.Graph) else ["output"]
    out_infos, renamed = [], {}
    for want, (have, arr) in zip(out_names, outs):
        final = ex.fresh(want)
        producer = [n for n in ex.nodes if have in n.output]
        read = any(have in n.input for n in ex.nodes)
        if producer and not read and have not in renamed:       # name the producing node's output
            outputs = producer[0].output
            outputs[list(outputs).index(have)] = final
            renamed[have] = final
        else:            # an input passed straight through, or a value also read inside, or given twice
            ex.nodes.append(onnx.helper.make_node("Identity", [renamed.get(have, have)], [final],
                                                  name=ex.fresh(f"{final}/Identity")))
        out_infos.append(onnx.helper.make_tensor_value_info(final, elem, ["N"] + list(arr.shape[1:])))
    in_infos = [onnx.helper.make_tensor_value_info(n, elem, ["N"] + list(s)) for n, s in zip(names, shapes)]
    graph = onnx.helper.make_graph(ex.nodes, "fastconv", in_infos, out_infos, ex.inits)
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="fastconv",
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        raise ONNXError(f"the ONNX model written for {type(model).__name__} does not check: {e}") from e
    return proto


def save(model, path, input_shape, opset=DEFAULT_OPSET):
    """Write ``model`` as an ONNX file at ``path`` (atomically); returns the path.

    ``input_shape``: the shape of one input without the batch axis, e.g.
    ``(3, 32, 32)`` (a list of shapes for a Graph of several inputs); the
    batch axis is left free. ``opset``: the ONNX operator set (13 or newer).
    The file computes ``model.eval().forward``; the model's modes are left as
    they were.
    """
    data = to_model(model, input_shape, opset).SerializeToString()
    return atomic_write(path, lambda f: f.write(data))
