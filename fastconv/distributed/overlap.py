"""Gradient allreduce overlapped with the backward pass (``DataParallel(overlap=True)``).

:class:`OverlappedBuckets` hooks the ``backward`` of every layer that owns
trainable parameters. When the last layer of a bucket has run its backward,
the bucket's gradients are final: it is packed and its ``MPI_Iallreduce``
starts while the backward pass goes on through the earlier layers; each later
hook calls ``MPI_Testall`` to let MPI progress. :meth:`finish` starts the
buckets no backward touched, waits for all, and unpacks. The sums are those of
:meth:`GradientBuckets.allreduce` (the same buffers, the same order of calls on
every rank). A parameter shared by two layers would make its bucket start
early: use the plain buckets for such models.

Whether it pays depends on MPI's progress: without an asynchronous progress
thread (MPICH's default) a large message moves mostly inside the MPI calls, so
the gain is the part done during the ``Testall`` calls.
"""

from __future__ import annotations

import time

import numpy as np

from . import comm
from .grads import GradientBuckets

__all__ = ["OverlappedBuckets"]


class OverlappedBuckets(GradientBuckets):
    """:class:`GradientBuckets` that start each bucket's allreduce during backward.

    Call :meth:`attach` once (hooks the model), then per step: :meth:`prepare` before
    ``model.backward`` (with the extra values), :meth:`finish` after it (returns the
    extra sums); :meth:`detach` removes the hooks. ``seconds`` counts the time spent
    in :meth:`finish` waiting for the transfers (what the overlap did not hide)."""

    def attach(self, model):
        self._bucket_of = {id(p): i for i, g in enumerate(self.groups) for p in g}
        self._hooked = []
        for m in model.modules():
            own = [p for p in m._params.values() if p.requires_grad and id(p) in self._bucket_of]
            if own and "backward" not in m.__dict__:
                m.__dict__["backward"] = self._hook(m, own)
                self._hooked.append(m)
        return self

    def detach(self):
        for m in getattr(self, "_hooked", []):
            m.__dict__.pop("backward", None)
        self._hooked = []

    def _hook(self, module, params):
        original = type(module).backward.__get__(module)

        def backward(dy):
            out = original(dy)
            if self._armed:
                for p in params:
                    self._left[self._bucket_of[id(p)]] -= 1
                # in bucket order only, the same on every rank (MPI needs the collectives
                # in one order): a bucket waits for the ones before it
                while self._next < len(self.groups) and self._left[self._next] == 0:
                    self._start(self._next)
                if self._requests:
                    comm._World.MPI.Request.Testall(self._requests)
            return out

        return backward

    def prepare(self, extra=(), zeros=False):
        """Arm the hooks for one step; ``extra``: the extra values to sum along.
        ``zeros``: send zeros instead of the gradients (a rank with no image in this
        step that runs a stand-in batch to keep the collectives in order)."""
        self._zeros = zeros
        self._left = [len(g) for g in self.groups]
        self._next = 0
        self._requests = []
        self._extra_values = extra
        self._armed = True

    def _start(self, i):
        group, buf = self.groups[i], self.buffers[i]
        o = 0
        for p in group:
            buf[o:o + p.size] = 0 if self._zeros else p.grad.reshape(-1)
            o += p.size
        if i == len(self.groups) - 1 and self.extra:
            buf[o:] = self._extra_values
        self._next = i + 1
        world = comm.world()
        if world is not None and comm.size() > 1:
            self._requests.append(world.Iallreduce(comm._World.MPI.IN_PLACE, buf, op=comm._World.MPI.SUM))
            self.calls += 1

    def finish(self):
        """Start what is left, wait for every bucket, unpack; returns the extra sums."""
        while self._next < len(self.groups):
            self._start(self._next)
        t0 = time.perf_counter()
        if self._requests:
            comm._World.MPI.Request.Waitall(self._requests)
        self.seconds += time.perf_counter() - t0
        self._armed = False
        self._requests = []
        out = np.zeros(self.extra)
        for i, (group, buf) in enumerate(zip(self.groups, self.buffers)):
            o = 0
            for p in group:
                p.grad.reshape(-1)[...] = buf[o:o + p.size]
                o += p.size
            if i == len(self.groups) - 1 and self.extra:
                out[...] = buf[o:]
        return out

    _armed = False
