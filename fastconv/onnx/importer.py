"""fastconv.onnx.load: an ONNX model -> a fastconv.nn network (eval mode).

The importer walks the graph's nodes in order with a fixed input size (the
model's own, or ``input_shape``). Every value is either a *constant*
(initializers, Constant nodes, anything computed only from those and from
shapes: :mod:`.fold` evaluates it in NumPy) or *data* that depends on the
network's input. Each node on the data path becomes one or more layers
(:mod:`.ops`), which are run once on a random input of that size, so every
data value's shape is known when the next node needs it (a Reshape target, a
"same" padding, a Flatten). A chain of layers comes back as a
:class:`~fastconv.nn.Sequential`, anything else as a :class:`~fastconv.nn.Graph`.
The batch size stays free wherever the graph keeps the batch on axis 0.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .. import nn
from ..nn.graph import Graph
from .errors import ONNXError, UnsupportedOperator, require_onnx
from .fold import FOLD
from .ops import CONVERT

__all__ = ["load", "SUPPORTED_OPS", "CONSTANT_OPS"]

#: The operators :func:`load` reads on the network's data (Shape and Size of data fold to constants).
SUPPORTED_OPS = tuple(sorted(set(CONVERT) | {"Constant", "Shape", "Size"}))
#: The operators evaluated at load time when all their inputs are constants (shape arithmetic).
CONSTANT_OPS = tuple(sorted(set(FOLD) | {"Constant"}))

_FOLD_ATTRS = {
    "Shape": {"start", "end"}, "Gather": {"axis"}, "ConstantOfShape": {"value"},
    "ReduceProd": {"axes", "keepdims"}, "ReduceSum": {"axes", "keepdims", "noop_with_empty_axes"},
}
_REQUIRED = object()
_DTYPES = {1: np.dtype(np.float32), 11: np.dtype(np.float64)}


class _Value:
    """A value of the graph: a constant array, or data (``dummy``: its value on the load input)."""

    __slots__ = ("const", "dummy", "trainable")

    def __init__(self, const=None, dummy=None, trainable=False):
        self.const, self.dummy, self.trainable = const, dummy, trainable

    @property
    def shape(self):
        return (self.const if self.const is not None else self.dummy).shape


class _Context:
    """What a converter sees of one node (see :mod:`.ops`)."""

    def __init__(self, imp, node, base):
        self.imp, self.node, self.base = imp, node, base
        self.op, self.name = node.op_type, node.name or f"{node.op_type} #{imp.count}"
        self.opset, self.onnx, self.dtype = imp.opset, imp.onnx, imp.dtype
        self.attrs = {a.name: a for a in node.attribute}
        self.n_inputs = len(node.input)
        outs = list(node.output)
        while outs and not outs[-1]:
            outs.pop()
        self.n_outputs = len(outs)

    def unsupported(self, attribute=None, detail=""):
        return UnsupportedOperator(self.op, self.name, attribute, detail)

    def attr(self, name, default=_REQUIRED):
        a = self.attrs.get(name)
        if a is None:
            if default is _REQUIRED:
                raise self.unsupported(name, "this required attribute is missing")
            return default
        v = self.onnx.helper.get_attribute_value(a)
        if isinstance(v, self.onnx.TensorProto):
            v = self.onnx.numpy_helper.to_array(v)
        elif isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        return v

    # -- inputs ------------------------------------------------------------

    def has(self, i):
        return i < self.n_inputs and bool(self.node.input[i])

    def value(self, i):
        return self.imp.env[self.node.input[i]] if self.has(i) else None

    def is_const(self, i):
        return self.has(i) and self.value(i).const is not None

    def const(self, i, what):
        v = self.value(i)
        if v is None:
            raise self.unsupported(what, "this input is missing")
        if v.const is None:
            raise self.unsupported(what, "it must be a constant, but it depends on the network input")
        c = v.const
        return c.astype(self.dtype) if c.dtype.kind == "f" and c.dtype != self.dtype else c

    def dyn(self, i, what="input"):
        v = self.value(i)
        if v is None:
            raise self.unsupported(what, f"input {i} is missing")
        if v.const is not None:
            raise self.unsupported(what, f"input {i} is a constant where fastconv needs network data")
        return self.node.input[i]

    def shape(self, i):
        return tuple(self.value(i).shape)

    def value_shape(self, name):
        return tuple(self.imp.env[name].shape)

    def out(self, k):
        return self.node.output[k]

    # -- output ------------------------------------------------------------

    def emit(self, layer, inputs, outputs=None, suffix=""):
        """Add ``layer`` reading ``inputs`` (data value names); returns its output names."""
        imp = self.imp
        if outputs is None:
            outputs = [imp.fresh_value(f"{self.base}:{suffix or 'out'}")]
        layer.eval()
        y = layer.forward(*[imp.env[n].dummy for n in inputs])
        ys = (y,) if len(outputs) == 1 else y
        for n, v in zip(outputs, ys):
            imp.env[n] = _Value(dummy=v)
        imp.nodes.append((imp.fresh_node(f"{self.base}_{suffix}" if suffix else self.base),
                          layer, list(inputs), list(outputs)))
        return outputs


class _Importer:
    def __init__(self, onnx, model, input_shape):
        self.onnx, self.model = onnx, model
        self.env, self.nodes = {}, []
        self.count = 0
        self._node_names, self._value_names = set(), set()
        g = model.graph
        opsets = {o.domain: o.version for o in model.opset_import}
        self.opset = opsets.get("", opsets.get("ai.onnx"))
        if self.opset is None:
            raise ONNXError("the model does not import the default ONNX operator set")
        if len(g.sparse_initializer):
            raise ONNXError("sparse initializers are not supported")
        for t in g.initializer:
            try:
                arr = onnx.numpy_helper.to_array(t)
            except Exception as e:      # an unknown element type, data not matching the dims ...
                raise ONNXError(f"initializer {t.name!r} cannot be read ({type(e).__name__}: {e})") from e
            self.env[t.name] = _Value(const=np.array(arr), trainable=arr.dtype.kind == "f")
        self.inputs = [i for i in g.input if i.name not in self.env]
        if not self.inputs:
            raise ONNXError("the model has no input")
        elem = {i.type.tensor_type.elem_type for i in self.inputs}
        if len(elem) != 1 or next(iter(elem)) not in _DTYPES:
            raise ONNXError(f"fastconv imports float32 (or float64) models; the inputs have element types {elem}")
        self.dtype = _DTYPES[next(iter(elem))]
        for v in self.env.values():
            if v.const.dtype.kind == "f":
                v.const = v.const.astype(self.dtype)
        shapes = _input_shapes(self.inputs, input_shape)
        rng = np.random.default_rng(0)
        for i, shape in zip(self.inputs, shapes):
            self.env[i.name] = _Value(dummy=rng.standard_normal(shape).astype(self.dtype))
        self._value_names.update(self.env)

    def fresh_node(self, base):
        name = re.sub(r"\W+", "_", base).strip("_") or "node"
        cand, k = name, 1
        while cand in self._node_names or hasattr(Graph, cand) or cand in ("inputs", "outputs"):
            k += 1
            cand = f"{name}_{k}"
        self._node_names.add(cand)
        return cand

    def fresh_value(self, base):
        cand, k = base, 1
        while cand in self._value_names:
            k += 1
            cand = f"{base}{k}"
        self._value_names.add(cand)
        return cand

    def run(self):
        g = self.model.graph
        with np.errstate(all="ignore"):
            for node in g.node:
                self.count += 1
                self._node(node)
        outputs = [o.name for o in g.output]
        for o in outputs:
            if o not in self.env:
                raise ONNXError(f"graph output {o!r} is not computed by any node")
            if self.env[o].const is not None:
                raise ONNXError(f"graph output {o!r} is a constant; fastconv builds networks of the input")
        return self._assemble([i.name for i in self.inputs], outputs)

    def _node(self, node):
        ctx = _Context(self, node, node.name or f"{node.op_type}_{self.count}")
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise ctx.unsupported(None, f"operator domain {node.domain!r}")
        for n in node.input:
            if n and n not in self.env:
                raise ONNXError(f"node {ctx.name!r} ({op}) reads {n!r}, which is not defined before it")
        if op == "Constant":
            return self._constant(ctx)
        allowed = CONVERT[op][1] if op in CONVERT else _FOLD_ATTRS.get(op, set())
        if op not in CONVERT and op not in FOLD:
            raise ctx.unsupported()
        for a in node.attribute:
            if a.name not in allowed | _FOLD_ATTRS.get(op, set()):
                raise ctx.unsupported(a.name)
        present = [self.env[n] if n else None for n in node.input]
        foldable = op in FOLD and all(v is None or v.const is not None for v in present)
        if op in ("Shape", "Size") and present and present[0] is not None:
            foldable = True
        try:
            if not foldable and op not in CONVERT:
                raise ctx.unsupported(None, "fastconv evaluates it only on constants (shape arithmetic), "
                                            "not on data that depends on the network input")
            if foldable:
                args = [None if v is None else (v.const if v.const is not None else v.dummy) for v in present]
                outs = FOLD[op](ctx, args)
                trainable = any(v is not None and v.trainable for v in present)
                for name, arr in zip(node.output, outs):
                    arr = np.asarray(arr)
                    self.env[name] = _Value(const=arr, trainable=trainable and arr.dtype.kind == "f")
            else:
                CONVERT[op][0](ctx)
        except UnsupportedOperator:
            raise
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as e:
            raise ONNXError(f"cannot convert node {ctx.name!r} ({op}): {e}") from e
        self._value_names.update(node.output)

    def _constant(self, ctx):
        for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
            if key in ctx.attrs:
                arr = np.asarray(ctx.attr(key))
                if key in ("value_float", "value_floats"):
                    arr = arr.astype(np.float32)
                elif key in ("value_int", "value_ints"):
                    arr = arr.astype(np.int64)
                if arr.dtype.kind == "f":
                    arr = arr.astype(self.dtype)
                self.env[ctx.out(0)] = _Value(const=arr)
                self._value_names.add(ctx.out(0))
                return
        raise ctx.unsupported(next(iter(ctx.attrs), "value"), "only dense tensor and number constants")

    def _assemble(self, inputs, outputs):
        nodes = self.nodes
        chain = len(inputs) == 1 and len(outputs) == 1 and bool(nodes)
        prev = inputs[0]
        for _, _, ins, outs in nodes:
            chain = chain and ins == [prev] and len(outs) == 1
            prev = outs[0]
        if chain and prev == outputs[0]:
            model = nn.Sequential([m for _, m, _, _ in nodes])
        else:
            model = Graph(inputs, outputs, nodes, dtype=self.dtype)
        return model.eval()


def _input_shapes(inputs, input_shape):
    """The full load-time shape of each graph input (batch 1 where the batch is free)."""
    given = input_shape
    if given is not None and not isinstance(given, dict):
        given = list(given)
        if len(inputs) == 1 and all(isinstance(d, (int, np.integer)) for d in given):
            given = [given]
        if len(given) != len(inputs):
            raise ValueError(f"input_shape must give a shape for each of the {len(inputs)} inputs")
        given = {i.name: s for i, s in zip(inputs, given)}
    shapes = []
    for i in inputs:
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                for d in i.type.tensor_type.shape.dim]
        want = None if given is None else given.get(i.name)
        if want is not None:
            want = [int(d) for d in want]
            if len(want) == len(dims) - 1:
                want = [dims[0] or 1] + want
            if len(dims) and len(want) != len(dims) or min(want, default=1) < 1:
                raise ValueError(f"input_shape {tuple(want)} does not fit input {i.name!r} of rank {len(dims)}")
            dims = want
        elif dims and dims[0] is None:
            dims[0] = 1
        if not dims or any(d is None for d in dims):
            raise ONNXError(
                f"input {i.name!r} has no fixed size ({dims}); pass input_shape= (without the batch axis)"
            )
        shapes.append(tuple(dims))
    return shapes


def _read_model(onnx, source):
    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        try:
            return onnx.load_from_string(bytes(source))
        except Exception as e:  # protobuf raises DecodeError, RuntimeWarning-ish types
            raise ONNXError(f"the bytes are not an ONNX model ({type(e).__name__}: {e})") from e
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX file at {str(path)!r}")
        try:
            return onnx.load(str(path))
        except Exception as e:
            raise ONNXError(f"{str(path)!r} is not a readable ONNX model ({type(e).__name__}: {e})") from e
    raise TypeError(f"load takes a path, bytes or an onnx.ModelProto, got {type(source).__name__}")


def load(source, input_shape=None):
    """Read an ONNX model as a fastconv network in eval mode.

    ``source``: a path, the file's bytes, or an ``onnx.ModelProto``.
    ``input_shape``: the input size to fold shape arithmetic for, with or
    without the batch axis (a tuple; a list or a name -> shape dict for several
    inputs); by default the model's own, which must then be fixed apart from
    the batch. Initializers become trainable parameters, so the network can be
    fine-tuned with :class:`fastconv.train.Trainer`.

    Raises :class:`UnsupportedOperator` (naming the op, the node and the
    attribute) for what fastconv does not implement, :class:`ONNXError` for a
    file that is not a valid model, FileNotFoundError for a missing file.
    """
    onnx = require_onnx()
    model = _read_model(onnx, source)
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise ONNXError(f"the ONNX model is invalid: {e}") from e
    try:
        return _Importer(onnx, model, input_shape).run()
    except (KeyError, IndexError, AttributeError) as e:   # a structure the checker let through
        raise ONNXError(f"the ONNX model is inconsistent ({type(e).__name__}: {e})") from e
