"""Pruning: :func:`prune` (``fastconv.prune``).

    small = fastconv.prune(model, 0.5)                     # structured: half the channels, dense
    sparse = fastconv.prune(model, 0.5, structured=False)  # half the weights zero, kept zero

Both return a new model (``model`` is untouched) that trains with the usual
Trainer and optimisers.

**Structured** (default): in every Conv2D and Linear whose outputs may change,
the fraction ``amount`` of output channels with the smallest norm (``criterion``
"l1" or "l2" of each channel's weights) is removed, and with it the matching
input channels of whatever consumes them: the next Conv2D's input channels, a
BatchNorm2D's statistics, the features a Linear reads after Flatten (a channel's
H*W features) or after GlobalAvgPool2D. The result is an ordinary, smaller,
dense network (the layers are :class:`PrunedConv2D` / :class:`PrunedLinear`,
plain Conv2D / Linear that only remember their original size for ``repr``), so
it is really faster, and ``fastconv.compile`` runs it. Never pruned: the
network's last layer (its outputs are the classes). Containers:

* Residual with an identity skip: ``body(x) + x`` keeps exactly the channels
  of ``x`` that survive upstream; the body's last layer is pruned to that same
  set ("consistently across the skip"), its inner layers freely.
* Residual with a projection shortcut: the block's output channels are left
  alone (both branches keep all of them); the layers inside are pruned.
* Concat: each branch is pruned on its own; the consumer sees the surviving
  channels of each branch at their concatenated positions.

**Unstructured** (``structured=False``): in every Conv2D and Linear, the fraction
``amount`` of weights with the smallest magnitude is set to zero, and the
weight becomes a :class:`MaskedParameter`: the optimisers multiply it by its
mask after every step (fastconv.optim), so fine-tuning keeps those weights at
zero. The shapes do not change (no speed-up with dense kernels); ``repr``
shows each layer's sparsity.
"""

from __future__ import annotations

import copy

import numpy as np

from . import nn
from ._args import as_float
from .nn.module import Parameter

__all__ = ["prune", "MaskedParameter", "PrunedConv2D", "PrunedLinear", "sparsity", "CRITERIA"]

CRITERIA = ("l1", "l2")


class MaskedParameter(Parameter):
    """A Parameter with a 0/1 ``mask`` of its shape: the optimisers multiply ``data`` by
    it after every update, so the masked (pruned) weights stay zero."""

    __slots__ = ("mask",)

    def __init__(self, data, mask, requires_grad=True):
        mask = np.asarray(mask)
        if mask.shape != data.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the data's {data.shape}")
        super().__init__(np.asarray(data * (mask != 0), dtype=data.dtype), requires_grad)
        self.mask = (mask != 0).astype(data.dtype)

    def apply_mask(self):
        self.data *= self.mask

    def __repr__(self):
        zeros = 1.0 - float(self.mask.mean()) if self.mask.size else 0.0
        return f"MaskedParameter(shape={self.data.shape}, dtype={self.data.dtype}, {100 * zeros:.1f}% pruned)"


def sparsity(module):
    """Fraction of exactly-zero weights over every Conv2D / Linear weight of ``module``."""
    ws = [m.weight.data for m in module.modules() if isinstance(m, (nn.Conv2D, nn.Linear))]
    total = sum(w.size for w in ws)
    return sum(int(np.count_nonzero(w == 0)) for w in ws) / total if total else 0.0


def _prune_repr(m, n_out, n_in, what):
    parts = []
    if (n_out, n_in) != (m._orig[0], m._orig[1]):
        parts.append(f"pruned from {m._orig[0]}x{m._orig[1]} {what}")
    w = m.weight.data
    zeros = np.count_nonzero(w == 0) / max(w.size, 1)
    if zeros >= 0.005:
        parts.append(f"{100 * zeros:.1f}% zeros")
    return "".join(", " + p for p in parts)


class PrunedConv2D(nn.Conv2D):
    """A Conv2D made by :func:`prune` (computes exactly as Conv2D); ``repr`` adds its
    original size and its sparsity."""

    _orig = (0, 0)

    def extra_repr(self):
        return super().extra_repr() + _prune_repr(self, self.out_channels, self.in_channels, "channels")


class PrunedLinear(nn.Linear):
    """A Linear made by :func:`prune` (computes exactly as Linear); ``repr`` adds its
    original size and its sparsity."""

    _orig = (0, 0)

    def extra_repr(self):
        return super().extra_repr() + _prune_repr(self, self.out_features, self.in_features, "features")


def _norms(w, criterion):
    w2 = np.asarray(w, np.float64).reshape(w.shape[0], -1)
    return np.abs(w2).sum(1) if criterion == "l1" else np.sqrt((w2 * w2).sum(1))


# ---------------------------------------------------------------- structured


class _Keep:
    """Which of ``n`` channels survive (``idx`` sorted, None = all); ``flat``: the channels
    were flattened, each into n_features / n consecutive features."""

    def __init__(self, idx, n, flat=False):
        self.idx, self.n, self.flat = (None if idx is None or len(idx) == n else np.asarray(idx)), n, flat

    def all(self):
        return self.idx is None

    def index(self):
        return np.arange(self.n) if self.idx is None else self.idx


_PASS = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.MaxPool2D, nn.AvgPool2D, nn.Dropout)


def _defines_channels(m):
    return not (type(m) in _PASS or type(m) in (nn.BatchNorm2D, nn.Flatten, nn.GlobalAvgPool2D))


def _orig_out(m, n_in):
    """Output channels of m (before pruning) for n_in input channels."""
    if type(m) in (nn.Conv2D, PrunedConv2D):
        return m.out_channels
    if type(m) in (nn.Linear, PrunedLinear):
        return m.out_features
    if type(m) is nn.Sequential:
        for k in m:
            n_in = _orig_out(k, n_in)
        return n_in
    if type(m) is nn.Residual:
        return _orig_out(m.body, n_in)
    if type(m) is nn.Concat:
        return sum(_orig_out(b, n_in) for b in m.children())
    return n_in


class _Structured:
    def __init__(self, amount, criterion):
        self.amount, self.criterion = amount, criterion

    def choose(self, w, spec):
        K = w.shape[0]
        if isinstance(spec, str):       # "all"
            return np.arange(K)
        if spec is not None:
            return np.asarray(spec)
        keep = max(1, int(round(K * (1.0 - self.amount))))
        order = np.argsort(-_norms(w, self.criterion), kind="stable")
        return np.sort(order[:keep])

    def conv(self, m, kin, spec):
        G = m.groups
        if G != 1 and not (G == m.in_channels == m.out_channels):
            if not kin.all():
                raise ValueError(f"cannot prune the input channels of a grouped Conv2D (groups={G})")
            out = np.arange(m.out_channels)
        elif G != 1:                    # depthwise: its channels are its input's
            out = kin.index()
        else:
            out = self.choose(m.weight.data, spec)
        cin = np.arange(m.in_channels) if kin.all() else kin.idx
        w = m.weight.data[out][:, cin] if G == 1 else m.weight.data[out]
        n_in = len(cin)
        new = PrunedConv2D(n_in, len(out), m.kernel_size, m.stride, m.padding, m.dilation,
                           len(out) if G != 1 else 1, bias=m.bias is not None, dtype=m.dtype)
        new.weight.data[...] = w
        if m.bias is not None:
            new.bias.data[...] = m.bias.data[out]
        new._orig = getattr(m, "_orig", (m.out_channels, m.in_channels))
        return new, _Keep(out, m.out_channels)

    def linear(self, m, kin, spec):
        if kin.all():
            fin = np.arange(m.in_features)
        elif kin.flat:
            hw = m.in_features // kin.n
            fin = (kin.idx[:, None] * hw + np.arange(hw)).reshape(-1)
        else:
            fin = kin.idx
        out = self.choose(m.weight.data, spec)
        new = PrunedLinear(len(fin), len(out), bias=m.bias is not None, dtype=m.dtype)
        new.weight.data[...] = m.weight.data[out][:, fin]
        if m.bias is not None:
            new.bias.data[...] = m.bias.data[out]
        new._orig = getattr(m, "_orig", (m.out_features, m.in_features))
        return new, _Keep(out, m.out_features)

    def bn(self, m, kin):
        if kin.all():
            return m, kin
        idx = kin.idx
        new = nn.BatchNorm2D(len(idx), m.eps, m.momentum, m.affine, dtype=m.dtype)
        if m.affine:
            new.weight.data[...] = m.weight.data[idx]
            new.bias.data[...] = m.bias.data[idx]
        new.running_mean[...] = m.running_mean[idx]
        new.running_var[...] = m.running_var[idx]
        new.num_batches_tracked[...] = m.num_batches_tracked
        return new, kin

    def seq(self, m, kin, spec):
        kids = list(m)
        last = max([i for i, k in enumerate(kids) if _defines_channels(k)], default=-1)
        out = []
        for i, k in enumerate(kids):
            k2, kin = self.run(k, kin, spec if i == last else None)
            out.append(k2)
        s = nn.Sequential(*out) if out else m
        s.input_grad = m.input_grad
        return s, kin

    def residual(self, m, kin, spec):
        if m.shortcut is None:
            if spec is not None and not isinstance(spec, str) and not np.array_equal(spec, kin.index()):
                raise ValueError("cannot prune a Residual whose output channels are constrained "
                                 "differently from its input's")
            if isinstance(spec, str) and not kin.all():
                raise ValueError("cannot keep all the channels of a Residual whose input was pruned")
            body, kout = self.run(m.body, kin, "all" if kin.all() else kin.idx)
            return nn.Residual(body), kout
        s = "all" if spec is None else spec
        body, kout = self.run(m.body, kin, s)
        short, _ = self.run(m.shortcut, kin, s)
        return nn.Residual(body, short), kout

    def concat(self, m, kin, spec):
        branches = list(m.children())
        sizes = [_orig_out(b, kin.n) for b in branches]
        offs = np.concatenate([[0], np.cumsum(sizes)])
        outs, idx = [], []
        for j, b in enumerate(branches):
            if spec is None:
                bspec = None
            elif isinstance(spec, str):
                bspec = "all"
            else:
                sel = np.asarray(spec)
                bspec = sel[(sel >= offs[j]) & (sel < offs[j + 1])] - offs[j]
            b2, kb = self.run(b, kin, bspec)
            outs.append(b2)
            idx.append(kb.index() + offs[j])
        return nn.Concat(*outs, axis=m.axis), _Keep(np.concatenate(idx), int(offs[-1]))

    def run(self, m, kin, spec):
        t = type(m)
        if t in (nn.Conv2D, PrunedConv2D):
            return self.conv(m, kin, spec)
        if t in (nn.Linear, PrunedLinear):
            return self.linear(m, kin, spec)
        if t is nn.BatchNorm2D:
            return self.bn(m, kin)
        if t is nn.Sequential:
            return self.seq(m, kin, spec)
        if t is nn.Residual:
            return self.residual(m, kin, spec)
        if t is nn.Concat:
            return self.concat(m, kin, spec)
        if t is nn.Flatten:
            return m, _Keep(kin.idx, kin.n, flat=True)
        if t is nn.GlobalAvgPool2D or t in _PASS:
            return m, kin
        if not m.parameters() and not m._modules:
            return m, kin                   # assumed channel-wise (elementwise, pooling)
        raise TypeError(f"prune does not know how channels flow through {t.__name__}")


# ---------------------------------------------------------------- unstructured


def _unstructured(model, amount, criterion):
    for m in list(model.modules()):
        if type(m) not in (nn.Conv2D, nn.Linear, PrunedConv2D, PrunedLinear):
            continue
        w = m.weight.data
        k = int(np.floor(amount * w.size))
        mask = np.ones(w.shape, bool)
        if k > 0:
            score = np.abs(np.asarray(w, np.float64)).reshape(-1)
            mask.reshape(-1)[np.argsort(score, kind="stable")[:k]] = False
        if isinstance(m.weight, MaskedParameter):
            mask &= m.weight.mask != 0
        p = MaskedParameter(w, mask, m.weight.requires_grad)
        m.weight = p
        if type(m) in (nn.Conv2D, nn.Linear):
            m.__class__ = PrunedConv2D if type(m) is nn.Conv2D else PrunedLinear
            m._orig = (w.shape[0], m.in_channels if isinstance(m, nn.Conv2D) else m.in_features)
    return model


def prune(model, amount, *, structured=True, criterion="l1"):
    """A pruned copy of ``model`` (see the module docstring); ``model`` is not changed.

    ``amount``: the fraction in [0, 1) of output channels (structured) or of weights
    (unstructured) removed from each Conv2D and Linear. ``criterion``: "l1" or "l2",
    the norm ranking channels (structured); unstructured pruning ranks single weights
    by magnitude.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a fastconv.nn.Module, got {type(model).__name__}")
    amount = as_float(amount, "amount", 0.0, 1.0, high_open=True)
    if not isinstance(structured, (bool, np.bool_)):
        raise TypeError(f"structured must be True or False, got {structured!r}")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    new = copy.deepcopy(model)
    if not structured:
        return _unstructured(new, amount, criterion)
    prev_mode = new.training
    out, _ = _Structured(amount, criterion).run(new, _Keep(None, 0), "all")
    out.train(prev_mode)
    out.input_grad = model.input_grad
    return out
