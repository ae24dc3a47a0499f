"""Lowering: a network of ``fastconv.nn`` modules -> :class:`.ir.Graph`.

Eval-mode semantics (BatchNorm with its running statistics, Dropout the
identity), whatever mode the model is in; the model is only read. Every array
the graph holds is a copy taken now (float64 for what fusion will still
compute with, the model's dtype otherwise), so the plan is a snapshot of the
weights at compile time and later training does not half-change it.

Supported: Sequential, Residual, Concat, Graph (one input, one output: what
``fastconv.onnx.load`` builds), Conv2D, Linear, BatchNorm2D, ReLU, ReLU6,
Clip, LeakyReLU, Sigmoid, Tanh, MaxPool2D, AvgPool2D, GlobalAvgPool2D, Mean
over (H, W), Flatten, Reshape, Dropout, Identity, and inside a Graph the
two-input Add (equal shapes) and Cat. A module of another type, or a subclass that overrides ``forward``,
is a TypeError naming it; a Conv2D / Linear subclass that overrides
``effective_weight`` (binary weights) is lowered with that weight.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..nn.activation import Identity as _ActIdentity
from .ir import Graph, Node

__all__ = ["lower"]


def _plain(m, cls):
    """True when m is a cls whose forward is cls's own (a subclass may compute something else)."""
    return isinstance(m, cls) and type(m).forward is cls.forward


def _weighted(m, cls):
    """True when m is a cls (Conv2D, Linear) computing cls's arithmetic: its own forward, or a
    subclass that declares the weight it really uses by overriding ``effective_weight``."""
    return isinstance(m, cls) and (type(m).forward is cls.forward
                                   or type(m).effective_weight is not cls.effective_weight)


def lower(model):
    """The graph of ``model.eval().forward`` (the model is not changed)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"fastconv.compile expects a fastconv.nn.Module, got {type(model).__name__}")
    g = Graph(np.dtype(model.dtype))
    g.output = _lower(g, model, g.input, "model")
    return g


def _check(g, v, m, ndim=None, channels=None):
    g.nodes.append(_node_check(g, v, m, ndim, channels))


def _node_check(g, v, m, ndim, channels):
    return Node("check", [v], v, {"module": m, "ndim": ndim, "channels": channels})


def _lower(g, m, v, path):
    if _plain(m, nn.Sequential):
        for i, child in enumerate(m):
            v = _lower(g, child, v, f"{path}.{i}")
        return v
    if _plain(m, nn.Residual):
        _check(g, v, m)
        body = _lower(g, m.body, v, path + ".body")
        short = v if m.shortcut is None else _lower(g, m.shortcut, v, path + ".shortcut")
        return g.add("add", [body, short], {"module": m, "xin": v})
    if _plain(m, nn.Graph):
        return _lower_graph(g, m, v, path)
    if _plain(m, nn.Concat):
        _check(g, v, m)
        outs = [_lower(g, b, v, f"{path}.{i}") for i, b in enumerate(m.children())]
        return g.add("concat", outs, {"axis": m.axis, "module": m})
    if _weighted(m, nn.Conv2D):
        _check(g, v, m, 4, m.in_channels)
        w = np.array(m.effective_weight(), dtype=np.float64)
        b = None if m.bias is None else np.array(m.bias.data, dtype=np.float64)
        return g.add("conv", [v], {"w": w, "b": b, "stride": m.stride, "padding": m.padding,
                                   "dilation": m.dilation, "groups": m.groups, "module": m,
                                   "name": path})
    if _weighted(m, nn.Linear):
        _check(g, v, m)
        w = np.array(m.effective_weight(), dtype=np.float64)
        b = None if m.bias is None else np.array(m.bias.data, dtype=np.float64)
        return g.add("linear", [v], {"w": w, "b": b, "module": m, "name": path})
    if _plain(m, nn.BatchNorm2D):
        _check(g, v, m, 4, m.num_features)
        return g.add("bn", [v], _bn_affine(m) | {"module": m, "name": path})
    if _plain(m, nn.ReLU):
        _check(g, v, m)
        return g.add("act", [v], {"kind": "relu", "a": 0.0, "b": 0.0})
    if _plain(m, nn.LeakyReLU):
        _check(g, v, m)
        return g.add("act", [v], {"kind": "leaky_relu", "a": float(m.negative_slope), "b": 0.0})
    if isinstance(m, nn.Clip) and type(m).forward is nn.Clip.forward:
        _check(g, v, m)
        lo = -np.inf if m.min is None else float(m.min)
        hi = np.inf if m.max is None else float(m.max)
        return g.add("act", [v], {"kind": "clip", "a": lo, "b": hi})
    if _plain(m, nn.Sigmoid):
        _check(g, v, m)
        return g.add("act", [v], {"kind": "sigmoid", "a": 0.0, "b": 0.0})
    if _plain(m, nn.Tanh):
        _check(g, v, m)
        return g.add("act", [v], {"kind": "tanh", "a": 0.0, "b": 0.0})
    if _plain(m, nn.MaxPool2D):
        _check(g, v, m, 4)
        return g.add("maxpool", [v], {"kernel": m.kernel_size, "stride": m.stride,
                                      "padding": m.padding, "dilation": m.dilation,
                                      "ceil_mode": m.ceil_mode, "count_include_pad": True})
    if _plain(m, nn.AvgPool2D):
        _check(g, v, m, 4)
        return g.add("avgpool", [v], {"kernel": m.kernel_size, "stride": m.stride,
                                      "padding": m.padding, "dilation": (1, 1),
                                      "ceil_mode": m.ceil_mode,
                                      "count_include_pad": m.count_include_pad})
    if _plain(m, nn.GlobalAvgPool2D):
        _check(g, v, m, 4)
        return g.add("gap", [v])
    if _plain(m, nn.Mean):
        _check(g, v, m, 4)
        if sorted(a % 4 for a in m.axes) != [2, 3]:
            raise TypeError(f"fastconv.compile cannot lower {path} ({m!r}): only a Mean over "
                            "axes (2, 3) of a 4-d input (a global average pool)")
        y = g.add("gap", [v])
        return g.add("view", [y], {"shape": (-1, 0, 1, 1), "module": m}) if m.keepdims else y
    if _plain(m, nn.Reshape):
        _check(g, v, m)
        return g.add("view", [v], {"shape": m.shape, "module": m})
    if _plain(m, nn.Flatten):
        _check(g, v, m)
        return g.add("flatten", [v], {"module": m})
    if _plain(m, nn.Dropout) or _plain(m, nn.Identity) or _plain(m, _ActIdentity):
        _check(g, v, m)
        return g.add("identity", [v])
    raise TypeError(
        f"fastconv.compile cannot lower {path} ({type(m).__name__}): supported are Sequential, "
        "Residual, Concat, Graph, Conv2D, Linear, BatchNorm2D, ReLU, ReLU6, Clip, LeakyReLU, "
        "Sigmoid, Tanh, MaxPool2D, AvgPool2D, GlobalAvgPool2D, Mean over (2, 3), Flatten, Reshape, "
        "Dropout and Identity (and in a Graph, Add of two inputs and Cat)"
    )


def _lower_graph(g, m, v, path):
    """An nn.Graph node by node: value names map to IR values; Add of two data inputs
    and Cat become ``add`` / ``concat``, every other node a one-input module."""
    if len(m.inputs) != 1 or len(m.outputs) != 1:
        raise TypeError(f"fastconv.compile cannot lower {path} (Graph with inputs {list(m.inputs)} "
                        f"and outputs {list(m.outputs)}): a compiled Graph has one input and one output")
    _check(g, v, m)
    env = {m.inputs[0]: v}
    for name, mod, ins, outs in m.nodes:
        where = f"{path}.{name}"
        vals = [env[i] for i in ins]
        if len(outs) != 1:
            raise TypeError(f"fastconv.compile cannot lower {where} ({type(mod).__name__}): "
                            "a node with several outputs")
        if isinstance(mod, nn.Add) and type(mod).forward is nn.Add.forward and not mod.fixed:
            _check(g, vals[0], mod)
            _check(g, vals[1], mod)
            out = g.add("add", vals, {"module": mod})
        elif _plain(mod, nn.Cat):
            for x in vals:
                _check(g, x, mod)
            out = g.add("concat", vals, {"axis": mod.axis, "module": mod})
        elif len(vals) == 1:
            out = _lower(g, mod, vals[0], where)
        else:
            raise TypeError(f"fastconv.compile cannot lower {where} ({type(mod).__name__}) "
                            f"with {len(vals)} inputs: only Add and Cat join values in a compiled Graph")
        env[outs[0]] = out
    return env[m.outputs[0]]


def _bn_affine(m):
    """Eval-mode BatchNorm as y = x * scale + shift, in float64."""
    mean = np.asarray(m.running_mean, np.float64)
    var = np.asarray(m.running_var, np.float64)
    scale = 1.0 / np.sqrt(var + float(m.eps))
    shift = -mean * scale
    if m.affine:
        gamma = np.asarray(m.weight.data, np.float64)
        beta = np.asarray(m.bias.data, np.float64)
        scale, shift = scale * gamma, shift * gamma + beta
    return {"scale": scale, "shift": shift}
