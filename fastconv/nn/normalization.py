"""Batch normalisation."""

from __future__ import annotations

import numpy as np

from .._args import as_float, as_int
from .._backend import ops
from .module import Module, Parameter

__all__ = ["BatchNorm2D"]


class BatchNorm2D(Module):
    """Batch normalisation over (N, H, W) per channel, as ``torch.nn.BatchNorm2d``.

    Training: normalise with the batch mean and biased variance, and update
    ``running_mean`` / ``running_var`` (with the unbiased variance) by
    ``running = (1 - momentum) * running + momentum * batch`` (``momentum=None``:
    cumulative average). Eval: normalise with the running statistics.
    ``weight`` (ones) and ``bias`` (zeros) exist when ``affine``.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, *,
                 dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.num_features = as_int(num_features, "num_features")
        self.eps = as_float(eps, "eps", 0.0, None, low_open=True)
        self.momentum = None if momentum is None else as_float(momentum, "momentum", 0.0, 1.0)
        if not isinstance(affine, (bool, np.bool_)):
            raise TypeError(f"affine must be True or False, got {affine!r}")
        self.affine = bool(affine)
        C = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(C, self.dtype))
            self.bias = Parameter(np.zeros(C, self.dtype))
        else:
            self.weight = None
            self.bias = None
        self.register_buffer("running_mean", np.zeros(C, self.dtype))
        self.register_buffer("running_var", np.ones(C, self.dtype))
        self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        self._cache = None

    def reset_parameters(self, seed=None):
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0
        self.running_mean[...] = 0
        self.running_var[...] = 1
        self.num_batches_tracked[...] = 0
        return self

    def forward(self, x):
        """x (N, C, H, W) -> y, normalised per channel (batch statistics in training,
        running statistics in eval), then scaled by weight and shifted by bias."""
        self._check_input(x, 4, self.num_features)
        N, C, H, W = x.shape
        w = self.weight.data if self.affine else None
        b = self.bias.data if self.affine else None
        if self.training:
            n = N * H * W
            if n < 2:
                raise ValueError(
                    f"{self._short()} in training mode needs more than one value per channel, "
                    f"got input shape {x.shape}"
                )
            # One kernel call: per-channel mean and biased variance (summed in double),
            # invstd, and y. xhat is never stored: backward recomputes it from x.
            y, mean, var, invstd = ops().batch_norm_train(x, w, b, self.eps)
            self.num_batches_tracked += 1
            f = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
            self.running_mean[...] = (1 - f) * self.running_mean + f * mean
            self.running_var[...] = (1 - f) * self.running_var + f * (var * (n / (n - 1)))
        else:
            invstd = 1 / np.sqrt(self.running_var + self.eps)
            mean = self.running_mean.copy()
            y = ops().batch_norm_affine(x, mean, invstd if w is None else invstd * w, b)
        # (input, mean, invstd, whether batch statistics were used): xhat = (x - mean) * invstd
        self._cache = (x, mean, invstd, bool(self.training))
        return y

    _fresh_forward = forward

    def backward(self, dy):
        """dy -> dx through the normalisation (through the batch statistics when they were
        used); adds dL/dweight and dL/dbias to their ``.grad``."""
        if self._cache is None:
            raise self._no_forward()
        x, mean, invstd, batch_stats = self._cache
        self._check_grad(dy, x.shape)
        w = self.weight.data if self.affine else None
        want_w = self.affine and self.weight.requires_grad
        want_b = self.affine and self.bias.requires_grad
        need_dx = self.input_grad and batch_stats
        dx = None
        if want_w or want_b or need_dx:
            dx, sum_dy, sum_dy_xhat = ops().batch_norm_backward(dy, x, mean, invstd, w, need_dx)
            if want_w:
                self.weight.grad += sum_dy_xhat
            if want_b:
                self.bias.grad += sum_dy
        if not self.input_grad:
            return None
        if batch_stats:
            return dx
        return ops().batch_norm_affine(dy, None, invstd if w is None else invstd * w, None)

    def extra_repr(self):
        s = f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
        if not self.affine:
            s += ", affine=False"
        return s
