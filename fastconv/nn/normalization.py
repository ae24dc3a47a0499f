"""Batch normalisation."""

from __future__ import annotations

import numpy as np

from .._args import as_float, as_int
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
        if self.training:
            n = N * H * W
            if n < 2:
                raise ValueError(
                    f"{self._short()} in training mode needs more than one value per channel, "
                    f"got input shape {x.shape}"
                )
            # Sums over the contiguous H*W rows first, then over the batch; xhat is
            # built in one buffer (x - mean, scaled in place): fewer passes over the
            # activations than mean / square / mean / multiply.
            mean = x.reshape(N, C, -1).sum(axis=2).sum(axis=0) / n
            xhat = x - mean[:, None, None]
            xh3 = xhat.reshape(N, C, -1)
            var = np.einsum("ncl,ncl->c", xh3, xh3) / n
            invstd = 1 / np.sqrt(var + self.eps)
            xhat *= invstd[:, None, None]
            self.num_batches_tracked += 1
            f = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
            self.running_mean[...] = (1 - f) * self.running_mean + f * mean
            self.running_var[...] = (1 - f) * self.running_var + f * (var * (n / (n - 1)))
        else:
            invstd = 1 / np.sqrt(self.running_var + self.eps)
            xhat = (x - self.running_mean[:, None, None]) * invstd[:, None, None]
        if self.affine:
            y = np.multiply(xhat, self.weight.data[:, None, None])
            y += self.bias.data[:, None, None]
        else:
            y = xhat
        self._cache = (xhat, invstd, bool(self.training))
        return y

    def backward(self, dy):
        """dy -> dx through the normalisation (through the batch statistics when they were
        used); adds dL/dweight and dL/dbias to their ``.grad``."""
        if self._cache is None:
            raise self._no_forward()
        xhat, invstd, batch_stats = self._cache
        self._check_grad(dy, xhat.shape)
        N, C = dy.shape[:2]
        dy3 = dy.reshape(N, C, -1)
        sum_dy = dy3.sum(axis=2).sum(axis=0)
        sum_dy_xhat = np.einsum("ncl,ncl->c", dy3, xhat.reshape(N, C, -1))
        if self.affine:
            if self.weight.requires_grad:
                self.weight.grad += sum_dy_xhat
            if self.bias.requires_grad:
                self.bias.grad += sum_dy
        if not self.input_grad:
            return None
        scale = invstd if not self.affine else self.weight.data * invstd
        if not batch_stats:
            return dy * scale[:, None, None]
        n = dy.size // C
        # scale * (dy - sum_dy / n - xhat * sum_dy_xhat / n), with one temporary
        dx = np.multiply(xhat, (-scale * sum_dy_xhat / n)[:, None, None])
        dx += dy * scale[:, None, None]
        dx -= (scale * sum_dy / n)[:, None, None]
        return dx

    def extra_repr(self):
        s = f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
        if not self.affine:
            s += ", affine=False"
        return s
