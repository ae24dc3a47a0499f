"""The errors of fastconv.onnx and the lazy import of the ``onnx`` package."""

from __future__ import annotations

__all__ = ["ONNXError", "UnsupportedOperator", "require_onnx"]


class ONNXError(ValueError):
    """A file or model fastconv cannot read or write: not ONNX, truncated, inconsistent."""


class UnsupportedOperator(ONNXError):
    """An ONNX operator, attribute or attribute value fastconv does not implement.

    ``op``: the operator type; ``node``: the node's name (or a description when
    it has none); ``attribute``: the attribute (or input) at fault, or None when
    the operator itself is unknown.
    """

    def __init__(self, op, node, attribute=None, detail=""):
        self.op = op
        self.node = node
        self.attribute = attribute
        self.detail = detail
        where = f"ONNX operator {op!r} (node {node!r})"
        if attribute is None:
            msg = f"{where} is not supported by fastconv.onnx"
        else:
            msg = f"{where}: attribute {attribute!r} is not supported"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)


def require_onnx():
    """The ``onnx`` module, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "fastconv.onnx needs the 'onnx' package: pip install 'fastconv[onnx]'"
        ) from e
    return onnx
