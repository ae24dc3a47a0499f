"""Lowering: a network of ``fastconv.nn`` modules -> :class:`.ir.Graph`.

Eval-mode semantics (BatchNorm with its running statistics, Dropout the
identity), whatever mode the model is in; the model is only read. Every array
the graph holds is a copy taken now (float64 for what fusion will still
compute with, the model's dtype otherwise), so the plan is a snapshot of the
weights at compile time and later training does not half-change it.

Supported: Sequential, Residual, Concat, Conv2D, Linear, BatchNorm2D, ReLU,
LeakyReLU, Sigmoid, Tanh, MaxPool2D, AvgPool2D, GlobalAvgPool2D, Flatten,
Dropout. A module of another type, or a subclass that overrides ``forward``,
is a TypeError naming it; a Conv2D / Linear subclass that overrides
``effective_weight`` (binary weights) is lowered with that weight.
"""

from __future__ import annotations

import numpy as np

from .. import nn
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
    if _plain(m, nn.Flatten):
        _check(g, v, m)
        return g.add("flatten", [v], {"module": m})
    if _plain(m, nn.Dropout) or _plain(m, nn.Identity):
        _check(g, v, m)
        return g.add("identity", [v])
    raise TypeError(
        f"fastconv.compile cannot lower {path} ({type(m).__name__}): supported are Sequential, "
        "Residual, Concat, Conv2D, Linear, BatchNorm2D, ReLU, LeakyReLU, Sigmoid, Tanh, "
        "MaxPool2D, AvgPool2D, GlobalAvgPool2D, Flatten, Dropout and Identity"
    )


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
