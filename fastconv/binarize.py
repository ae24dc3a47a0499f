"""Binary weights: :func:`binarize` (``fastconv.binarize``), XNOR-Net's "BWN" scheme.

    b = fastconv.binarize(model)          # a new model; `model` is untouched
    Trainer(b, loss, optim.Adam(b.parameters(), 1e-3)).fit(...)

Every Conv2D and Linear becomes a :class:`BinaryConv2D` / :class:`BinaryLinear`
that keeps a float "latent" weight ``w`` (the trainable Parameter, copied from
the model) and computes with

    w_b[k] = sign(w[k]) * alpha[k],     alpha[k] = mean |w[k]|  (per output channel)

(sign(0) = +1). The gradient goes straight through the sign (straight-through
estimator, clipped): dL/dw = dL/dw_b where |w| <= 1, else 0. Biases stay float.

Saved with :func:`fastconv.train.save_model`, a binary layer's weight is stored
packed, 1 bit per weight (``numpy.packbits``), with its float32 ``alpha``: the
loaded model computes exactly the same outputs (its latent weights are the
binary ones, ``sign * alpha``, which resume training from there).

``fastconv.compile`` runs a binary model as it runs a float one: the binary
layers declare their ``sign * alpha`` weight through ``effective_weight()``,
so the plan convolves with it (fused and folded like any Conv2D / Linear).
:func:`binary_to_float` turns a trained binary model into plain Conv2D /
Linear layers holding ``sign * alpha``, the same outputs.
"""

from __future__ import annotations

import copy

import numpy as np

from . import nn
from ._backend import ops

__all__ = ["binarize", "binary_to_float", "BinaryConv2D", "BinaryLinear", "binary_weight",
           "BINARY_LAYERS"]


def binary_weight(w):
    """(sign(w) * alpha, alpha): alpha = mean |w| over each output channel (float64 sums,
    so a weight that is already sign * alpha gives back exactly alpha)."""
    K = w.shape[0]
    alpha = np.abs(w.reshape(K, -1)).mean(axis=1, dtype=np.float64).astype(w.dtype)
    shape = (K,) + (1,) * (w.ndim - 1)
    return np.where(w >= 0, alpha.reshape(shape), -alpha.reshape(shape)).astype(w.dtype), alpha


def _ste(dw_b, w):
    return np.where(np.abs(w) <= 1, dw_b, 0).astype(w.dtype)


def _bits_repr(m):
    n = m.weight.data.size
    return f"1-bit weights ({(n + 7) // 8} B packed + {m.weight.shape[0] * 4} B scales)"


class BinaryConv2D(nn.Conv2D):
    """Conv2D computing with sign(w) * mean|w| per output channel; straight-through gradient."""

    def effective_weight(self):
        """sign(w) * alpha, the weight the forward pass convolves with."""
        return binary_weight(self.weight.data)[0]

    def forward(self, x):
        self._check_input(x, 4, self.in_channels)
        wb = self.effective_weight()
        b = None if self.bias is None else self.bias.data
        y = ops().conv2d(x, wb, b, **self._conv_args())
        self._x, self._wb, self._y_shape = x, wb, y.shape
        return y

    def backward(self, dy):
        if self._x is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        need_w = self.weight.requires_grad
        need_b = self.bias is not None and self.bias.requires_grad
        need_dx = bool(self.input_grad)
        if not (need_w or need_b or need_dx):
            return None
        dx, dw, db = ops().conv2d_backward(dy, self._x, self._wb, **self._conv_args(),
                                           need_dx=need_dx, need_db=need_b)
        if need_w:
            self.weight.grad += _ste(dw, self.weight.data)
        if need_b:
            self.bias.grad += db
        return dx if need_dx else None

    def extra_repr(self):
        return super().extra_repr() + ", " + _bits_repr(self)


class BinaryLinear(nn.Linear):
    """Linear computing with sign(w) * mean|w| per output feature; straight-through gradient."""

    def effective_weight(self):
        """sign(w) * alpha, the weight the forward pass multiplies by."""
        return binary_weight(self.weight.data)[0]

    def forward(self, x):
        self._check_input(x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{self._short()} expects a 2-d input (N, {self.in_features}), got shape {x.shape}")
        wb = self.effective_weight()
        y = ops().linear(x, wb, None if self.bias is None else self.bias.data)
        self._x, self._wb = x, wb
        return y

    def backward(self, dy):
        if self._x is None:
            raise self._no_forward()
        self._check_grad(dy, (self._x.shape[0], self.out_features))
        need_db = self.bias is not None and self.bias.requires_grad
        dx, dw, db = ops().linear_backward(dy, self._x, self._wb, need_dx=self.input_grad,
                                           need_db=need_db)
        if self.weight.requires_grad:
            self.weight.grad += _ste(dw, self.weight.data)
        if need_db:
            self.bias.grad += db
        return dx

    def extra_repr(self):
        return super().extra_repr() + ", " + _bits_repr(self)


#: float layer -> its binary twin
BINARY_LAYERS = {nn.Conv2D: BinaryConv2D, nn.Linear: BinaryLinear}


def _twin(m):
    cls = BINARY_LAYERS[type(m)]
    if cls is BinaryConv2D:
        b = cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                m.groups, bias=m.bias is not None, dtype=m.dtype)
    else:
        b = cls(m.in_features, m.out_features, bias=m.bias is not None, dtype=m.dtype)
    b.weight.data[...] = m.weight.data
    if m.bias is not None:
        b.bias.data[...] = m.bias.data
    b.weight.requires_grad, b.input_grad = m.weight.requires_grad, m.input_grad
    return b


def _swap(m, skip):
    for name, child in list(m.named_children()):
        if type(child) in BINARY_LAYERS and id(child) not in skip:
            m.add_module(name, _twin(child))
        else:
            _swap(child, skip)


def binarize(model, *, keep_first=False, keep_last=False):
    """A copy of ``model`` whose Conv2D and Linear layers have binary weights (see the
    module docstring), initialised from the model's weights; ``model`` is not changed.
    ``keep_first`` / ``keep_last``: leave the first / last of those layers in float
    (a common choice for accuracy). Train it with the usual Trainer and optimisers."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a fastconv.nn.Module, got {type(model).__name__}")
    new = copy.deepcopy(model)
    if type(new) in BINARY_LAYERS:
        return new if keep_first or keep_last else _twin(new)
    layers = [m for m in new.modules() if type(m) in BINARY_LAYERS]
    skip = set()
    if layers and keep_first:
        skip.add(id(layers[0]))
    if layers and keep_last:
        skip.add(id(layers[-1]))
    _swap(new, skip)
    return new


def binary_to_float(model):
    """A copy of ``model`` with every binary layer replaced by a plain Conv2D / Linear whose
    weight is its binary weight ``sign(w) * alpha`` (same outputs). ``model`` is not changed."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a fastconv.nn.Module, got {type(model).__name__}")
    new = copy.deepcopy(model)

    def plain(b):
        if isinstance(b, BinaryConv2D):
            m = nn.Conv2D(b.in_channels, b.out_channels, b.kernel_size, b.stride, b.padding,
                          b.dilation, b.groups, bias=b.bias is not None, dtype=b.dtype)
        else:
            m = nn.Linear(b.in_features, b.out_features, bias=b.bias is not None, dtype=b.dtype)
        m.weight.data[...] = binary_weight(b.weight.data)[0]
        if b.bias is not None:
            m.bias.data[...] = b.bias.data
        m.input_grad = b.input_grad
        return m

    if isinstance(new, (BinaryConv2D, BinaryLinear)):
        return plain(new)

    def swap(m):
        for name, child in list(m.named_children()):
            if isinstance(child, (BinaryConv2D, BinaryLinear)):
                m.add_module(name, plain(child))
            else:
                swap(child)

    swap(new)
    return new
