"""Losses: SoftmaxCrossEntropy and MSELoss, averaged as PyTorch's ``reduction="mean"``.

Usage::

    loss_fn = SoftmaxCrossEntropy()
    value = loss_fn.forward(logits, labels)   # a Python float
    dlogits = loss_fn.backward()              # gradient of value w.r.t. logits

``dtype=None`` (the default) accepts float32 and float64 predictions and
computes in their dtype; with a dtype given, other dtypes are a TypeError.
"""

from __future__ import annotations

import numpy as np

from .._args import _FLOAT_DTYPES, as_dtype, as_float

__all__ = ["Loss", "SoftmaxCrossEntropy", "MSELoss"]


class Loss:
    """Base class of the losses: ``forward(pred, target) -> float``, ``backward() -> dpred``."""

    def __init__(self, *, dtype=None, seed=None):
        self.dtype = None if dtype is None else as_dtype(dtype)
        self.seed = seed
        self._cache = None

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, pred, target):
        """The loss (a float) of ``pred`` against ``target``; caches what backward needs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def backward(self, grad=1.0):
        """dL/dpred, scaled by ``grad`` (the gradient of what the loss feeds, 1 by default)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    def _check_pred(self, x, name):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{type(self).__name__}: {name} must be a numpy.ndarray, got {type(x).__name__}")
        if x.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{type(self).__name__}: {name} must be float32 or float64, got {x.dtype}")
        if self.dtype is not None and x.dtype != self.dtype:
            raise TypeError(
                f"{self!r} expects {self.dtype} {name}, got {x.dtype}: convert it with "
                f"{name}.astype(numpy.{self.dtype.name})"
            )
        return x

    def _no_forward(self):
        return RuntimeError(f"{type(self).__name__}.backward() called before forward()")

    def _grad_scale(self, grad):
        return as_float(grad, "grad")

    def __repr__(self):
        return f"{type(self).__name__}()" if self.dtype is None else f"{type(self).__name__}(dtype={self.dtype.name})"


class SoftmaxCrossEntropy(Loss):
    """Cross-entropy of softmax(logits) against integer class labels, averaged over the batch.

    ``forward(logits, labels)``: logits (N, K) float, labels (N,) ints in [0, K).
    Computed through log-sum-exp with the row maximum subtracted, so large
    logits neither overflow nor lose the result. ``backward(grad=1.0)`` returns
    ``grad * (softmax(logits) - onehot(labels)) / N``.
    """

    def forward(self, logits, labels):
        """Mean cross-entropy of softmax(logits) (N, classes) against integer labels (N,)."""
        self._check_pred(logits, "logits")
        if logits.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropy: logits must be 2-d (N, num_classes), got shape {logits.shape}")
        N, K = logits.shape
        if N == 0 or K == 0:
            raise ValueError(f"SoftmaxCrossEntropy: logits must have N >= 1 and num_classes >= 1, got shape {logits.shape}")
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu":
            raise TypeError(
                f"SoftmaxCrossEntropy: labels must be integer class indices, got dtype {labels.dtype}"
            )
        if labels.shape != (N,):
            raise ValueError(f"SoftmaxCrossEntropy: labels must have shape ({N},) for logits {logits.shape}, got {labels.shape}")
        bad = (labels < 0) | (labels >= K)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"SoftmaxCrossEntropy: labels must be in [0, {K}), got labels[{i}] = {labels[i]}"
            )
        shifted = logits - logits.max(axis=1, keepdims=True)
        ex = np.exp(shifted)
        total = ex.sum(axis=1, keepdims=True)
        rows = np.arange(N)
        log_p = shifted[rows, labels] - np.log(total[:, 0])
        value = float(-log_p.mean())
        self._cache = (ex / total, labels)
        return value

    def backward(self, grad=1.0):
        """dL/dlogits = grad * (softmax(logits) - onehot(labels)) / N."""
        if self._cache is None:
            raise self._no_forward()
        probs, labels = self._cache
        g = self._grad_scale(grad)
        N = probs.shape[0]
        d = probs.copy()
        d[np.arange(N), labels] -= 1
        d *= d.dtype.type(g / N)
        return d


class MSELoss(Loss):
    """Mean squared error over all elements: mean((pred - target)**2), as ``torch.nn.MSELoss``."""

    def forward(self, pred, target):
        """Mean of (pred - target)**2 over every element."""
        self._check_pred(pred, "pred")
        self._check_pred(target, "target")
        if target.dtype != pred.dtype:
            raise TypeError(f"MSELoss: target has dtype {target.dtype} but pred has {pred.dtype}; cast one of them")
        if target.shape != pred.shape:
            raise ValueError(f"MSELoss: target must have the shape of pred {pred.shape}, got {target.shape}")
        if pred.size == 0:
            raise ValueError("MSELoss: pred is empty")
        diff = pred - target
        self._cache = diff
        return float(np.mean(np.square(diff)))

    def backward(self, grad=1.0):
        """dL/dpred = grad * 2 * (pred - target) / pred.size."""
        if self._cache is None:
            raise self._no_forward()
        diff = self._cache
        g = self._grad_scale(grad)
        return diff * diff.dtype.type(2.0 * g / diff.size)
