""":class:`DataParallel`: what :class:`fastconv.train.Trainer` calls to train on several ranks.

The trainer keeps its loop; where a step or an evaluation touches the data it
hands over to this object, which splits the global batch, weights each rank's
gradient by its share of the batch, sums the gradients over the ranks and
reduces the statistics. See :mod:`fastconv.distributed` for the semantics.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .._args import as_bool, as_float
from .._trainchecks import evaluate, task_of
from . import comm
from .grads import BUCKET_MB, GradientBuckets, broadcast_parameters, shard_bounds
from .overlap import OverlappedBuckets
from .syncbn import SyncBatchNorm2D, convert_sync_batchnorm, restore_batchnorm

__all__ = ["DataParallel", "from_option"]


class DataParallel:
    """Data-parallel training over the ranks of an MPI job, for ``Trainer(distributed=...)``.

    ``sync_batchnorm``: compute BatchNorm's statistics over the global batch
    (:class:`~fastconv.distributed.SyncBatchNorm2D`) rather than over each rank's
    share (the default). ``bucket_mb``: the size of the gradient buckets
    (:class:`~fastconv.distributed.GradientBuckets`). ``overlap``: start each bucket's
    allreduce during the backward pass, as soon as its gradients are final
    (:class:`~fastconv.distributed.OverlappedBuckets`; the per-epoch allreduce time is
    then what the overlap did not hide, and no wait is measured apart). ``required``: without an MPI
    launcher, raise :class:`~fastconv.distributed.DistributedError` (True) or run as
    one process (False). MPI starts when the object is made.
    """

    def __init__(self, sync_batchnorm=False, bucket_mb=BUCKET_MB, required=True, overlap=False):
        self.sync_batchnorm = as_bool(sync_batchnorm, "sync_batchnorm")
        self.overlap = as_bool(overlap, "overlap")
        self.bucket_mb = as_float(bucket_mb, "bucket_mb", 0.0, None, low_open=True)
        comm.init(required=as_bool(required, "required"))
        self._buckets = None
        self._mark = (0.0, 0.0)
        self._swaps = []
        self.step_count = 0

    @property
    def rank(self):
        return comm.rank()

    @property
    def size(self):
        return comm.size()

    @property
    def is_main(self):
        """True on rank 0, the rank that prints and writes files."""
        return comm.rank() == 0

    @property
    def allreduce_seconds(self):
        """Seconds spent in the gradient allreduce since the last :meth:`begin` (the
        transfer: the ranks have met at a barrier first)."""
        return 0.0 if self._buckets is None else self._buckets.seconds

    @property
    def wait_seconds(self):
        """Seconds spent waiting at that barrier for the slowest rank (load imbalance)."""
        return 0.0 if self._buckets is None else self._buckets.wait_seconds

    # -- the run -----------------------------------------------------------

    def begin(self, model):
        """Before training: rank 0's weights everywhere, the buckets, the BatchNorm layers."""
        broadcast_parameters(model)
        if self.sync_batchnorm and not self._swaps:
            self._swaps = convert_sync_batchnorm(model)
        if self.overlap:
            self._buckets = OverlappedBuckets(model, self.bucket_mb, extra=2).attach(model)
        else:
            self._buckets = GradientBuckets(model, self.bucket_mb, extra=2, split_wait=True)
        self.step_count = 0
        self._mark = (0.0, 0.0)

    def end(self, model):
        """After training: the hooks off, the model's own BatchNorm layers back."""
        if isinstance(self._buckets, OverlappedBuckets):
            self._buckets.detach()
        restore_batchnorm(self._swaps)
        self._swaps = []

    def check_batch_size(self, batch_size):
        if batch_size < self.size:
            raise ValueError(
                f"batch_size={batch_size} is smaller than the number of ranks ({self.size}): "
                "the global batch is split across the ranks, each needs at least one image; "
                f"pass batch_size >= {self.size}")

    def train_step(self, model, loss_fn, optimizer, xb, yb, classify, check_loss):
        """One optimiser step on the global batch ``(xb, yb)``: this rank's share forward
        and backward with the loss gradient weighted by its share of the batch, the
        gradients summed over the ranks, ``check_loss(global mean loss)``, then the
        step. Returns ``(global mean loss, correct predictions in the global batch)``."""
        n = len(yb)
        lo, hi = shard_bounds(n)
        optimizer.zero_grad()
        overlap = isinstance(self._buckets, OverlappedBuckets)
        extra = (0.0, 0)
        if hi > lo:
            xl, yl = xb[lo:hi], yb[lo:hi]
            out = model.forward(xl)
            value = loss_fn.forward(out, yl)
            extra = (value * (hi - lo), int(np.count_nonzero(out.argmax(axis=1) == yl)) if classify else 0)
            if overlap:
                self._buckets.prepare(extra)
            dy = loss_fn.backward()
            model.backward(dy * dy.dtype.type((hi - lo) / n))
        elif self._swaps:
            # no image for this rank: a stand-in batch that counts for nothing keeps the
            # synchronised BatchNorm layers' collectives in step with the other ranks
            if overlap:  # the buckets start at the same points of backward as on the other
                self._buckets.prepare(extra, zeros=True)  # ranks (the order of collectives), with zeros
            layers = [m for m in model.modules() if isinstance(m, SyncBatchNorm2D)]
            for m in layers:
                m.ghost = True
            try:
                out = model.forward(xb[:1])
                loss_fn.forward(out, yb[:1])
                dy = loss_fn.backward()
                model.backward(dy * 0)
            finally:
                for m in layers:
                    m.ghost = False
            optimizer.zero_grad()  # the stand-in's gradients (not zero: BatchNorm mixes in the others')
        elif overlap:
            self._buckets.prepare(extra)
        sums = self._buckets.finish() if overlap else self._buckets.allreduce(extra=extra)
        self.step_count += 1
        value = float(sums[0]) / n
        check_loss(value)
        optimizer.step()
        return value, int(round(float(sums[1])))

    def end_epoch(self, model, steps):
        """After an epoch of ``steps`` steps: with local BatchNorm statistics, rank 0's
        running statistics everywhere (as DDP's buffer broadcast), so every rank evaluates
        the same model. Returns the epoch's logs ``allreduce_seconds``, ``wait_seconds``
        (see :class:`GradientBuckets`) and ``steps``."""
        now = (self.allreduce_seconds, self.wait_seconds)
        logs = {"allreduce_seconds": now[0] - self._mark[0], "wait_seconds": now[1] - self._mark[1],
                "steps": steps}
        self._mark = now
        if not self.sync_batchnorm and any(True for _ in model.named_buffers()):
            world = comm.world()
            if world is not None and self.size > 1:
                for _, b in model.named_buffers():
                    world.Bcast(b, root=0)
        return logs

    @staticmethod
    def summary(logs):
        """The per-epoch line's part on the allreduce: time per step and share of the epoch."""
        steps = max(1, logs.get("steps", 1))
        ms = [1e3 * logs[k] / steps for k in ("allreduce_seconds", "wait_seconds")]
        share = 100 * logs["allreduce_seconds"] / logs["seconds"] if logs.get("seconds", 0) > 0 else 0.0
        return f"allreduce {ms[0]:.2f} ms/step ({share:.1f}%), wait {ms[1]:.2f} ms/step"

    def evaluate(self, model, data, loss, batch_size=256, task=None):
        """:func:`fastconv.train.evaluate` sharded: each rank evaluates its block of the
        data, the sums are reduced; every rank returns the same result."""
        X, y = data
        task = task_of(task, loss, y)
        lo, hi = shard_bounds(X.shape[0])
        sums = np.zeros(2)
        if hi > lo:
            r = evaluate(model, (X[lo:hi], y[lo:hi]), loss, batch_size, task, _checked=True)
            sums[:] = r["loss"] * (hi - lo), r.get("accuracy", 0.0) * (hi - lo)
        world = comm.world()
        if world is not None and self.size > 1:
            world.Allreduce(comm._World.MPI.IN_PLACE, sums, op=comm._World.MPI.SUM)
        n = X.shape[0]
        if task == "classification":
            return {"loss": sums[0] / n, "accuracy": int(round(sums[1])) / n, "n": n}
        return {"loss": sums[0] / n, "n": n}

    @contextlib.contextmanager
    def guard(self, user_errors=()):
        """Any exception raised inside ends the whole job: the rank and the error are
        printed, then MPI_Abort (no rank is left waiting in a collective). Exceptions of
        the types ``user_errors`` are printed without their type and end it with code 2."""
        try:
            yield self
        except (Exception, KeyboardInterrupt) as exc:
            if self.size > 1:
                user = isinstance(exc, tuple(user_errors))
                comm.fail(exc, 2 if user else 1, show_type=not user)
            raise

    def __repr__(self):
        return (f"DataParallel(rank={self.rank}, size={self.size}, sync_batchnorm={self.sync_batchnorm}, "
                f"bucket_mb={self.bucket_mb:g}, overlap={self.overlap})")


def from_option(option):
    """The trainer's ``distributed`` argument as a :class:`DataParallel` or None: None
    (auto: on when an MPI launcher started more than one process), True (required),
    False (never) or a :class:`DataParallel`."""
    if option is None:
        found = comm.launched()
        return DataParallel(required=True) if found is not None and found[2] > 1 else None
    if isinstance(option, DataParallel):
        return option
    if option is True:
        return DataParallel(required=True)
    if option is False:
        return None
    raise TypeError(f"distributed must be None, True, False or a fastconv.distributed.DataParallel, "
                    f"got {type(option).__name__}")
