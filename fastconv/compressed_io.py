"""Saving and loading compressed models with :func:`fastconv.train.save_model` /
:func:`~fastconv.train.load_model` (the .npz format of :mod:`fastconv.checkpoint`).

A compressed model (int8 from :func:`fastconv.quantize`, pruned from
:func:`fastconv.prune`, binary from :func:`fastconv.binarize`) cannot be rebuilt
from a :mod:`fastconv.models` builder name, so its file also holds a
``module_spec``: the tree of its layers with each one's constructor arguments
(JSON in the file's metadata). Arrays are stored as they are held: int8 weights
as int8, scales as float32, biases as int32; a binary layer's latent float
weight is stored as its bits (``numpy.packbits`` of ``w >= 0``, 1 bit per
weight) and its per-channel ``alpha``, so the file is small and the loaded model
computes the same outputs. A pruned model's masks are the positions of its zero
weights.

This module registers :data:`CODEC` with :data:`fastconv.checkpoint.MODEL_CODECS`
when it is imported (the package imports it).
"""

from __future__ import annotations

import numpy as np

from . import nn
from .binarize import BinaryConv2D, BinaryLinear, binary_weight
from .checkpoint import MODEL_CODECS, CheckpointError
from .prune import MaskedParameter, PrunedConv2D, PrunedLinear
from .qlayers import (QConv2D, QFlatten, QFloat, QLinear, QMaxPool2D, QModule, QReLU,
                      QuantizedModel)

__all__ = ["describe", "build", "encode", "decode", "CODEC", "is_compressed"]

_CONV = (nn.Conv2D, PrunedConv2D, BinaryConv2D)
_LINEAR = (nn.Linear, PrunedLinear, BinaryLinear)
_LEAVES = {c.__name__: c for c in (
    nn.Conv2D, nn.Linear, nn.BatchNorm2D, nn.MaxPool2D, nn.AvgPool2D, nn.GlobalAvgPool2D, nn.ReLU,
    nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Flatten, nn.Dropout, PrunedConv2D, PrunedLinear,
    BinaryConv2D, BinaryLinear)}
_QLEAVES = {c.__name__: c for c in (QConv2D, QLinear, QMaxPool2D, QReLU, QFlatten)}
_BINARY = (BinaryConv2D, BinaryLinear)


def _l(v):
    return v if isinstance(v, str) else [int(a) for a in v]


def _config(m):
    t = type(m)
    if t in _CONV:
        return dict(in_channels=m.in_channels, out_channels=m.out_channels,
                    kernel_size=_l(m.kernel_size), stride=_l(m.stride), padding=_l(m.padding),
                    dilation=_l(m.dilation), groups=m.groups, bias=m.bias is not None)
    if t in _LINEAR:
        return dict(in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None)
    if t is nn.BatchNorm2D:
        return dict(num_features=m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine)
    if t is nn.MaxPool2D:
        return dict(kernel_size=_l(m.kernel_size), stride=_l(m.stride), padding=_l(m.padding),
                    dilation=_l(m.dilation), ceil_mode=m.ceil_mode)
    if t is nn.AvgPool2D:
        return dict(kernel_size=_l(m.kernel_size), stride=_l(m.stride), padding=_l(m.padding),
                    ceil_mode=m.ceil_mode, count_include_pad=m.count_include_pad)
    if t is nn.LeakyReLU:
        return dict(negative_slope=m.negative_slope)
    if t is nn.Dropout:
        return dict(p=m.p)
    return {}


def describe(m):
    """The JSON-able spec of module ``m`` (TypeError for a module it cannot describe)."""
    t = type(m)
    name = t.__name__
    if t is nn.Sequential:
        return {"type": name, "children": [describe(k) for k in m]}
    if t is nn.Residual:
        return {"type": name, "body": describe(m.body),
                "shortcut": None if m.shortcut is None else describe(m.shortcut)}
    if t is nn.Concat:
        return {"type": name, "axis": m.axis, "children": [describe(k) for k in m.children()]}
    if t is QuantizedModel:
        return {"type": name, "config": m.config(), "body": describe(m.body)}
    if t is QFloat:
        return {"type": name, "config": m.config(), "module": describe(m.module)}
    if name in _QLEAVES and _QLEAVES[name] is t:
        return {"type": name, "config": m.config()}
    if name in _LEAVES and _LEAVES[name] is t:
        spec = {"type": name, "dtype": m.dtype.name, "config": _config(m)}
        masked = [n for n, p in m._params.items() if isinstance(p, MaskedParameter)]
        if masked:
            spec["masked"] = masked
        if t in (PrunedConv2D, PrunedLinear):
            spec["orig"] = [int(v) for v in m._orig]
        return spec
    raise TypeError(f"cannot save a {name} inside a compressed model (no spec for it)")


def _tup(v):
    return v if isinstance(v, str) else tuple(v)


def build(spec):
    """A module built from a :func:`describe` spec (its arrays not yet loaded)."""
    t = spec["type"]
    if t == "Sequential":
        return nn.Sequential(*[build(c) for c in spec["children"]])
    if t == "Residual":
        return nn.Residual(build(spec["body"]), None if spec["shortcut"] is None else build(spec["shortcut"]))
    if t == "Concat":
        return nn.Concat(*[build(c) for c in spec["children"]], axis=spec["axis"])
    if t == "QuantizedModel":
        return QuantizedModel(build(spec["body"]), **spec["config"])
    if t == "QFloat":
        cfg = spec["config"]
        return QFloat(build(spec["module"]), (1.0, 0), None if cfg["out"] == "float32" else (1.0, 0),
                      cfg.get("in_layout"))
    if t in _QLEAVES:
        cfg = {k: _tup(v) if isinstance(v, list) else v for k, v in spec["config"].items()}
        if t == "QReLU":
            return QReLU()
        return _QLEAVES[t](**cfg)
    if t in _LEAVES:
        cfg = {k: _tup(v) if isinstance(v, list) else v for k, v in spec["config"].items()}
        m = _LEAVES[t](**cfg, dtype=np.dtype(spec["dtype"]))
        for n in spec.get("masked", ()):
            p = m._params[n]
            setattr(m, n, MaskedParameter(p.data, np.ones(p.shape, bool), p.requires_grad))
        if "orig" in spec:
            m._orig = tuple(spec["orig"])
        return m
    raise CheckpointError(f"unknown layer type {t!r} in the saved model spec")


def is_compressed(model):
    return any(isinstance(m, (QModule, QuantizedModel, PrunedConv2D, PrunedLinear) + _BINARY)
               or any(isinstance(p, MaskedParameter) for p in m._params.values())
               for m in model.modules())


def _binary_prefixes(model):
    return [name for name, m in model.named_modules() if isinstance(m, _BINARY)]


def encode(model):
    """(spec, arrays) for a compressed model, None for any other."""
    if not isinstance(model, nn.Module) or not is_compressed(model):
        return None
    spec = describe(model)
    state = model.state_dict()
    for pre in _binary_prefixes(model):
        key = f"{pre}.weight" if pre else "weight"
        w = state.pop(key)
        _, alpha = binary_weight(w)
        state[key + "_bits"] = np.packbits((w >= 0).reshape(-1))
        state[key + "_alpha"] = alpha
    return spec, state


def decode(spec, state, model=None, path="file"):
    """Rebuild (or fill ``model``, which must have the same structure) from a spec and
    the stored arrays."""
    if model is None:
        model = build(spec)
    elif type(model).__name__ != spec.get("type"):
        raise CheckpointError(f"{path} holds a compressed {spec.get('type')}, not a "
                              f"{type(model).__name__}; load it with load_model(path)")
    state = dict(state)
    own = model.state_dict()
    for pre in _binary_prefixes(model):
        key = f"{pre}.weight" if pre else "weight"
        bits, alpha = state.pop(key + "_bits", None), state.pop(key + "_alpha", None)
        if bits is None or alpha is None or key not in own:
            raise CheckpointError(f"{path}: the binary weight {key!r} is missing")
        shape = own[key].shape
        n = int(np.prod(shape))
        if bits.size * 8 < n or alpha.shape != (shape[0],):
            raise CheckpointError(f"{path}: the binary weight {key!r} does not fit shape {shape}")
        signs = np.unpackbits(bits, count=n).reshape(shape).astype(bool)
        a = alpha.astype(own[key].dtype).reshape((shape[0],) + (1,) * (len(shape) - 1))
        state[key] = np.where(signs, a, -a).astype(own[key].dtype)
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} does not fit this model: {exc}") from None
    for m in model.modules():
        for p in m._params.values():
            if isinstance(p, MaskedParameter):
                p.mask = (p.data != 0).astype(p.data.dtype)
    if isinstance(model, QuantizedModel):
        model.eval()
    return model


class _Codec:
    encode = staticmethod(encode)
    decode = staticmethod(decode)


#: The codec registered with fastconv.checkpoint.
CODEC = _Codec()
if not any(isinstance(c, _Codec) for c in MODEL_CODECS):
    MODEL_CODECS.append(CODEC)
