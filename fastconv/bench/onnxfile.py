"""An ONNX file as ``fastconv bench --onnx`` and ``fastconv predict`` read it.

:func:`read` parses the file once (the optional ``onnx`` package) and describes
its one input; :func:`network` builds the fastconv network for one input shape
(:func:`fastconv.onnx.load`, which folds the exporter's shape arithmetic for
that shape, so each batch size gets its own network). Every problem a user can
cause (no ``onnx`` package, a missing or malformed file, an operator fastconv
does not implement, an input of the wrong shape or dtype) is a ValueError with
a one-line message, raised before any long work.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import onnx as fc_onnx
from .._args.paths import input_file
from ..onnx.errors import require_onnx

__all__ = ["OnnxFile", "read", "network", "check_input"]

#: ONNX TensorProto element types fastconv runs: FLOAT and DOUBLE.
_DTYPES = {1: np.dtype(np.float32), 11: np.dtype(np.float64)}


class OnnxFile:
    """A parsed ONNX model with one input and one output.

    ``path``; ``proto`` (the ``onnx.ModelProto``); ``input_name``; ``dims`` (the input's
    sizes, None where the file leaves one free, the batch axis first); ``dtype`` (numpy).
    """

    def __init__(self, path, proto, input_name, dims, dtype):
        self.path, self.proto = path, proto
        self.input_name, self.dims, self.dtype = input_name, dims, dtype

    def describe(self):
        """The input as text, e.g. ``(N, 1, 28, 28) float32``."""
        text = ", ".join("N" if i == 0 and d is None else "?" if d is None else str(d)
                         for i, d in enumerate(self.dims))
        return f"({text}) {self.dtype.name}"


def _one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def read(path):
    """Parse the ONNX file at ``path``; an :class:`OnnxFile`, or ValueError (FileNotFoundError
    for a missing file) with a one-line message."""
    p = input_file(path, "the ONNX model", (".onnx",), "an .onnx file")
    try:
        onnx = require_onnx()
    except ImportError as e:
        raise ValueError(_one_line(e)) from None
    try:
        proto = onnx.load(str(p))
    except Exception as e:  # protobuf's DecodeError and friends: any failure is a bad file
        raise ValueError(f"{path} is not a readable ONNX model ({type(e).__name__}: {_one_line(e)})") from None
    graph = proto.graph
    init = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ValueError(f"{path} has {len(inputs)} inputs and {len(graph.output)} outputs; "
                         "only models with one input and one output are supported here")
    tensor = inputs[0].type.tensor_type
    dtype = _DTYPES.get(tensor.elem_type)
    if dtype is None:
        raise ValueError(f"{path}: input {inputs[0].name!r} has ONNX element type {tensor.elem_type}; "
                         "fastconv runs float32 (1) and float64 (11) inputs")
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim]
    if not dims:
        raise ValueError(f"{path}: input {inputs[0].name!r} has no shape (an image batch (N, C, H, W) expected)")
    return OnnxFile(str(path), proto, inputs[0].name, dims, dtype)


def check_input(f, shape, what="the input"):
    """ValueError when an array of ``shape`` (batch axis first) does not fit ``f``'s input."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != len(f.dims) or any(d is not None and d != s for d, s in zip(f.dims, shape)):
        raise ValueError(f"{what} has shape {shape}; {f.path} takes {f.describe()}")


def network(f, shape):
    """The fastconv network (eval mode) of ``f`` for inputs of ``shape`` (batch axis first);
    ValueError with a one-line message when fastconv cannot build it."""
    check_input(f, shape)
    try:
        return fc_onnx.load(f.proto, input_shape=tuple(int(s) for s in shape))
    except (fc_onnx.ONNXError, ValueError, TypeError, NotImplementedError) as e:
        raise ValueError(f"cannot load {f.path}: {_one_line(e)}") from None
