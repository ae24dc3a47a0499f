"""Moving a model's arrays between ranks: broadcast, bucketed gradient allreduce, shards.

The gradients are summed in a few large flat buffers ("buckets", at most
``bucket_mb`` megabytes each, filled in backward order: the last layer's
gradients first, as PyTorch's DistributedDataParallel does), one
``MPI_Allreduce`` per bucket, rather than one call per tensor: a step of every
built-in model is one call. The buffers are allocated once per model.
"""

from __future__ import annotations

import time

import numpy as np

from .._args import as_float, as_int
from ..nn.module import Module
from . import comm

__all__ = ["GradientBuckets", "broadcast_parameters", "allreduce_gradients", "shard", "shard_bounds"]

#: Default bucket size in megabytes (PyTorch DDP's default).
BUCKET_MB = 25.0


def _check_model(model):
    if not isinstance(model, Module):
        raise TypeError(f"model must be a fastconv.nn.Module, got {type(model).__name__}")


def broadcast_parameters(model, root=0):
    """Copy rank ``root``'s parameters and buffers (BatchNorm's running statistics) into
    every other rank's ``model``, in place. Every rank must call it with a model of the
    same architecture. Nothing happens without MPI. Returns the model."""
    _check_model(model)
    world = comm.world()
    if world is None or comm.size() == 1:
        return model
    root = as_int(root, "root", 0)
    if root >= comm.size():
        raise ValueError(f"root must be a rank in [0, {comm.size()}), got {root}")
    arrays = [p.data for p in model.parameters()] + [b for _, b in model.named_buffers()]
    for a in arrays:
        world.Bcast(a, root=root)
    return model


class GradientBuckets:
    """The flat gradient buffers of one model: :meth:`allreduce` sums (or averages) the
    gradients of every trainable parameter over the ranks, one call per bucket.

    ``extra``: how many extra values of the model's dtype to reduce with the last bucket
    (the trainer sends its step's loss sum and correct count along, at no extra call).
    ``num_buckets`` tells how many calls a step makes; ``seconds`` accumulates the time
    spent in them. ``split_wait``: first wait for every rank at a barrier, timed apart
    in ``wait_seconds`` (the load imbalance), so ``seconds`` is the transfer alone;
    else the waiting is in ``seconds``.
    """

    def __init__(self, model, bucket_mb=BUCKET_MB, extra=0, split_wait=False):
        _check_model(model)
        bucket_mb = as_float(bucket_mb, "bucket_mb", 0.0, None, low_open=True)
        self.extra = as_int(extra, "extra", 0)
        self.params = [p for p in reversed(model.parameters()) if p.requires_grad]
        self.dtype = np.dtype(model.dtype)
        limit = max(1, int(bucket_mb * 1e6) // self.dtype.itemsize)
        groups, cur, n = [], [], 0
        for p in self.params:
            if cur and n + p.size > limit:
                groups.append(cur)
                cur, n = [], 0
            cur.append(p)
            n += p.size
        groups.append(cur)
        self.groups = groups
        self.buffers = [np.empty(sum(p.size for p in g) + (self.extra if i == len(groups) - 1 else 0),
                                 self.dtype) for i, g in enumerate(groups)]
        self.split_wait = bool(split_wait)
        self.seconds = 0.0
        self.wait_seconds = 0.0
        self.calls = 0

    @property
    def num_buckets(self):
        return len(self.buffers)

    def allreduce(self, average=False, extra=None):
        """Sum the gradients over the ranks in place (``average``: divide by the number
        of ranks). ``extra``: the extra values (a sequence of ``self.extra`` numbers),
        summed too; returns their sums as a float64 array (empty without extras)."""
        world = comm.world()
        MPI = comm._World.MPI
        out = np.zeros(self.extra)
        if self.split_wait and world is not None and comm.size() > 1:
            t0 = time.perf_counter()
            world.Barrier()
            self.wait_seconds += time.perf_counter() - t0
        for i, (group, buf) in enumerate(zip(self.groups, self.buffers)):
            o = 0
            for p in group:
                buf[o:o + p.size] = p.grad.reshape(-1)
                o += p.size
            last = i == len(self.groups) - 1
            if last and self.extra:
                buf[o:] = extra
            if world is not None and comm.size() > 1:
                t0 = time.perf_counter()
                world.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
                self.seconds += time.perf_counter() - t0
                self.calls += 1
            if average and comm.size() > 1:
                buf[:o] /= comm.size()
            o = 0
            for p in group:
                p.grad.reshape(-1)[...] = buf[o:o + p.size]
                o += p.size
            if last and self.extra:
                out[...] = buf[o:]
        return out


_BUCKETS = {}


def allreduce_gradients(model, average=True, bucket_mb=BUCKET_MB):
    """Sum the ``.grad`` of every trainable parameter of ``model`` over the ranks, in
    place, through flat buckets of at most ``bucket_mb`` MB (one ``MPI_Allreduce`` per
    bucket); ``average`` (default): then divide by the number of ranks, so each rank
    holds the mean of the ranks' gradients (Horovod's and PyTorch DDP's meaning). Call
    it after ``backward`` and before ``optimizer.step()`` on every rank. Returns the
    model's :class:`GradientBuckets` (its ``seconds`` add up the time spent)."""
    _check_model(model)
    key = (id(model), float(bucket_mb))
    b = _BUCKETS.get(key)
    if b is None or [id(p) for p in b.params] != [id(p) for p in reversed(model.parameters())
                                                  if p.requires_grad]:
        b = _BUCKETS[key] = GradientBuckets(model, bucket_mb)
    b.allreduce(average=average)
    return b


def shard_bounds(n, rank=None, size=None):
    """``(start, stop)``: the rows of ``n`` that rank ``rank`` of ``size`` owns: contiguous
    blocks, sizes differing by at most one (``n * r // size`` to ``n * (r + 1) // size``).
    Default: this process's rank and the world's size."""
    size = comm.size() if size is None else as_int(size, "size", 1)
    rank = comm.rank() if rank is None else as_int(rank, "rank", 0)
    if rank >= size:
        raise ValueError(f"rank must be in [0, size={size}), got {rank}")
    n = as_int(n, "n", 0)
    return n * rank // size, n * (rank + 1) // size


def shard(X, y=None, rank=None, size=None):
    """This rank's block of rows of ``X`` (and of ``y``): views, ``X[start:stop]`` with
    :func:`shard_bounds`; returns ``X_part`` or ``(X_part, y_part)`` when ``y`` is given.
    With one process, ``X`` (and ``y``) whole."""
    if not hasattr(X, "shape") or len(X.shape) < 1:
        raise TypeError(f"X must be an array with samples along its first axis, got {type(X).__name__}")
    if y is not None and (not hasattr(y, "shape") or len(y) != X.shape[0]):
        raise ValueError(f"y must have one row per row of X ({X.shape[0]}), got "
                         f"{getattr(y, 'shape', type(y).__name__)}")
    lo, hi = shard_bounds(X.shape[0], rank, size)
    return X[lo:hi] if y is None else (X[lo:hi], y[lo:hi])
