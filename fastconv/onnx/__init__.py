"""fastconv.onnx: read ONNX models as fastconv networks, and write fastconv networks as ONNX.

::

    import fastconv.onnx
    model = fastconv.onnx.load("net.onnx")                        # a fastconv.nn module, eval mode
    fastconv.onnx.save(model, "out.onnx", input_shape=(3, 32, 32))  # batch axis left free

Needs the optional ``onnx`` package (``pip install 'fastconv[onnx]'``), imported
only when :func:`load` or :func:`save` is called. :data:`SUPPORTED_OPS` lists the
operators read on the network's data, :data:`CONSTANT_OPS` those folded at load time.
"""

from .errors import ONNXError, UnsupportedOperator
from .exporter import DEFAULT_OPSET, save, to_model
from .importer import CONSTANT_OPS, SUPPORTED_OPS, load

__all__ = ["load", "save", "to_model", "ONNXError", "UnsupportedOperator", "SUPPORTED_OPS", "CONSTANT_OPS",
           "DEFAULT_OPSET"]
