"""fastconv.onnx: read ONNX models as fastconv networks, and write fastconv networks as ONNX.

::

    import fastconv.onnx
    model = fastconv.onnx.load("net.onnx")                        # a fastconv.nn module, eval mode
    fastconv.onnx.save(model, "out.onnx", input_shape=(3, 32, 32))  # batch axis left free

Needs the optional ``onnx`` package (``pip install 'fastconv[onnx]'``), imported
only when :func:`load` or :func:`save` is called. See :data:`SUPPORTED_OPS`.
"""

from .errors import ONNXError, UnsupportedOperator
from .exporter import DEFAULT_OPSET, save, to_model
from .importer import SUPPORTED_OPS, load

__all__ = ["load", "save", "to_model", "ONNXError", "UnsupportedOperator", "SUPPORTED_OPS", "DEFAULT_OPSET"]
