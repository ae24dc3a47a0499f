"""Synchronised batch normalisation: the statistics of the whole global batch on every rank.

By default (PyTorch DistributedDataParallel's default too) each rank's
:class:`~fastconv.nn.BatchNorm2D` normalises with the statistics of its own
share of the batch, so a model with BatchNorm trains slightly differently
from one process, and the running statistics of rank 0 are kept (broadcast to
the others after every epoch). :class:`SyncBatchNorm2D` (``sync_batchnorm=True``)
computes them over the global batch instead: one allreduce of the per-channel
count, sum and sum of squares in ``forward`` and one of the two per-channel
gradient sums in ``backward``, so the result equals one process running the
whole batch, up to summation order.

The sums are taken about the running mean (the same on every rank) in float64,
which keeps ``sumsq/n - mean**2`` free of cancellation.
"""

from __future__ import annotations

import numpy as np

from ..nn.normalization import BatchNorm2D
from . import comm

__all__ = ["SyncBatchNorm2D", "convert_sync_batchnorm", "restore_batchnorm"]


def _allreduce(values):
    world = comm.world()
    if world is not None and comm.size() > 1:
        world.Allreduce(comm._World.MPI.IN_PLACE, values, op=comm._World.MPI.SUM)
    return values


class SyncBatchNorm2D(BatchNorm2D):
    """:class:`~fastconv.nn.BatchNorm2D` with the batch statistics (and their gradients)
    summed over every rank (``torch.nn.SyncBatchNorm``). Every rank must run ``forward``
    and ``backward`` of every such layer in the same order. ``ghost``: this rank holds
    no images of the current batch and runs a stand-in that counts for nothing."""

    ghost = False

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        self._check_input(x, 4, self.num_features)
        N, C, H, W = x.shape
        shift = self.running_mean.astype(np.float64)
        xc = x.astype(np.float64, copy=False) - shift[:, None, None]
        sums = np.empty(2 * C + 1)
        sums[:C] = xc.sum(axis=(0, 2, 3))
        sums[C:2 * C] = np.einsum("nchw,nchw->c", xc, xc)
        sums[2 * C] = N * H * W
        if self.ghost:
            sums[...] = 0
        _allreduce(sums)
        n = sums[2 * C]
        if n < 2:
            raise ValueError(f"{self._short()} in training mode needs more than one value per "
                             f"channel over all ranks, got {int(n)}")
        d = sums[:C] / n
        mean = shift + d
        var = np.maximum(sums[C:2 * C] / n - d * d, 0.0)
        invstd = (1 / np.sqrt(var + self.eps)).astype(self.dtype)
        mean, var = mean.astype(self.dtype), var.astype(self.dtype)
        xhat = (x - mean[:, None, None]) * invstd[:, None, None]
        self.num_batches_tracked += 1
        f = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
        self.running_mean[...] = (1 - f) * self.running_mean + f * mean
        self.running_var[...] = (1 - f) * self.running_var + f * (var * (n / (n - 1)))
        y = xhat * self.weight.data[:, None, None] + self.bias.data[:, None, None] if self.affine else xhat
        self._cache = (x, mean, invstd, True)      # BatchNorm2D's layout
        self._global_n = n
        return y

    def backward(self, dy):
        if self._cache is None:
            raise self._no_forward()
        x, mean, invstd, batch_stats = self._cache
        if not batch_stats:
            return super().backward(dy)
        self._check_grad(dy, x.shape)
        xhat = (x - mean[:, None, None]) * invstd[:, None, None]
        C = self.num_features
        local = np.empty(2 * C, dtype=self.dtype)
        local[:C] = dy.sum(axis=(0, 2, 3))
        local[C:] = np.einsum("nchw,nchw->c", dy, xhat)
        if self.ghost:
            local[...] = 0
        if self.affine:
            if self.weight.requires_grad:
                self.weight.grad += local[C:]
            if self.bias.requires_grad:
                self.bias.grad += local[:C]
        total = _allreduce(local.copy())
        if not self.input_grad:
            return None
        scale = invstd if not self.affine else self.weight.data * invstd
        n = self._global_n
        dx = dy - (total[:C] / n)[:, None, None] - xhat * (total[C:] / n)[:, None, None]
        dx *= scale[:, None, None]
        return dx


def convert_sync_batchnorm(model):
    """Replace every :class:`~fastconv.nn.BatchNorm2D` inside ``model`` by a
    :class:`SyncBatchNorm2D` that shares its parameters and buffers (so an optimiser
    built before keeps working, and ``state_dict`` names do not change). Returns the
    list of replacements, for :func:`restore_batchnorm`."""
    swaps = []
    for _, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if type(child) is BatchNorm2D:
                sync = SyncBatchNorm2D.__new__(SyncBatchNorm2D)
                sync.__dict__.update(child.__dict__)
                parent.add_module(name, sync)
                swaps.append((parent, name, child))
    return swaps


def restore_batchnorm(swaps):
    """Undo :func:`convert_sync_batchnorm`: put the original layers back (their
    statistics are those of the synchronised ones: the same arrays)."""
    for parent, name, child in reversed(swaps):
        sync = parent._modules[name]
        child.__dict__.update({k: v for k, v in sync.__dict__.items() if k not in ("_global_n",)})
        parent.add_module(name, child)
