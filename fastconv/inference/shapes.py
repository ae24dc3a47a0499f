"""Shape inference for one input shape, raising the errors the model would raise.

The lowered graph keeps a ``check`` node wherever a module checks its input
(type, dtype, ndim, channels), in forward order; running those checks on a
stand-in array of the right shape and dtype (a broadcast view of one zero, no
data) gives the model's own messages. Geometry errors come from the same
validators the function API uses (``conv_params``, ``pool_params``), and the
Linear, Flatten, Residual and Concat messages are the layers' own wording.
"""

from __future__ import annotations

import numpy as np

from .._args import check_max_pool_windows, conv_params, pool_params

__all__ = ["infer_shapes"]


def _standin(shape, dtype):
    return np.broadcast_to(np.zeros((), dtype), shape)


def infer_shapes(graph, x):
    """value name -> shape for input ``x`` (an array, or anything the model would reject),
    plus the geometry of every conv and pool node (``node.output`` -> params)."""
    shapes = {graph.input: None}
    geoms = {}
    first = True
    for node in graph.nodes:
        if node.op == "check":
            m = node.attrs["module"]
            if first:
                # the real input: its type and dtype are checked as the model does
                m._check_input(x, node.attrs["ndim"], node.attrs["channels"])
                shapes[graph.input] = tuple(int(d) for d in x.shape)
                first = False
            else:
                shp = shapes[node.inputs[0]]
                m._check_input(_standin(shp, graph.dtype), node.attrs["ndim"],
                               node.attrs["channels"])
            continue
        if first:
            raise TypeError("fastconv.compile: the model checks no input")  # pragma: no cover
        ins = [shapes[v] for v in node.inputs]
        if node.op == "add":
            node_x = shapes[node.attrs["xin"]] if "xin" in node.attrs else None
            geoms[node.output] = node_x
        shapes[node.output] = _infer(node, ins, geoms, graph.dtype)
    if first:
        raise TypeError("fastconv.compile: the model checks no input")  # pragma: no cover
    return shapes, geoms


def _infer(node, ins, geoms, dtype):
    op, a = node.op, node.attrs
    s = ins[0]
    if op == "conv":
        p = conv_params(s, a["w"].shape, a["stride"], a["padding"], a["dilation"], a["groups"])
        geoms[node.output] = p
        return p.y_shape
    if op == "linear":
        m = a["module"]
        if len(s) != 2 or s[1] != m.in_features:
            msg = f"{m._short()} expects a 2-d input (N, {m.in_features}), got shape {s}"
            if len(s) > 2:
                msg += "; put a Flatten() layer before it"
            raise ValueError(msg)
        return (s[0], m.out_features)
    if op in ("bn", "act", "identity"):
        return s
    if op in ("maxpool", "avgpool"):
        p = pool_params(s, a["kernel"], a["stride"], a["padding"], a["dilation"], a["ceil_mode"])
        if op == "maxpool":
            check_max_pool_windows(p)
        geoms[node.output] = p
        return p.y_shape
    if op == "gap":
        return s[:2]
    if op == "flatten":
        if len(s) < 2:
            raise ValueError(f"{a['module']._short()} expects an input with a batch axis "
                             f"(ndim >= 2), got shape {s}")
        return (s[0], int(np.prod(s[1:], dtype=np.int64)))
    if op == "add":
        if ins[0] != ins[1] and "xin" not in a:
            raise ValueError(f"{a['module']._short()}: the compiled plan adds operands of equal "
                             f"shape only, got {ins[0]} and {ins[1]}")
        if ins[0] != ins[1]:
            raise ValueError(
                f"Residual: body output shape {ins[0]} differs from the shortcut's {ins[1]} "
                f"(input {geoms[node.output]}); give Residual a projection shortcut= module "
                "that maps the input to the body's output shape"
            )
        return s
    if op == "view":
        target = tuple(s[i] if d == 0 else d for i, d in enumerate(a["shape"]))
        try:
            return np.broadcast_to(np.zeros((), np.bool_), s).reshape(target).shape
        except ValueError:
            raise ValueError(f"{a['module']._short()}: cannot reshape an input of shape {s}") from None
    if op == "concat":
        axis = a["axis"]
        ndim = len(ins[0])
        ax = axis if axis > 0 else ndim + axis
        if not 1 <= ax < ndim:
            raise ValueError(f"Concat axis={axis} is out of range for branch outputs of ndim {ndim}")
        for o in ins:
            if len(o) != ndim or o[:ax] + o[ax + 1:] != ins[0][:ax] + ins[0][ax + 1:]:
                shapes = ", ".join(str(o_) for o_ in ins)
                raise ValueError(
                    f"Concat branch outputs must agree except along axis {axis}, got shapes {shapes}"
                )
        geoms[node.output] = ax
        return ins[0][:ax] + (sum(o[ax] for o in ins),) + ins[0][ax + 1:]
    raise ValueError(f"unknown node {op}")  # pragma: no cover
