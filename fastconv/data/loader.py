"""Mini-batches of an ``(X, y)`` pair: :class:`BatchLoader` (what ``Trainer`` iterates)."""

from __future__ import annotations

import numpy as np

from .._args import as_int, make_rng

__all__ = ["BatchLoader"]


class BatchLoader:
    """Iterate over ``(xb, yb)`` mini-batches of ``batch_size`` rows of ``X`` and ``y``.

    ``X``: an array of N samples along its first axis; ``y``: an array of N
    labels, or None (then ``yb`` is None). The last batch is smaller when
    ``batch_size`` does not divide N, unless ``drop_last`` (then it is left
    out). ``len(loader)`` is the number of batches.

    Without ``shuffle`` the batches are views of consecutive rows
    (``X[i:i + batch_size]``). With ``shuffle`` every iteration draws a new
    order ``rng.permutation(N)`` first (one draw from ``rng``, before the first
    batch), and each batch is a copy ``X[order[i:i + batch_size]]``, C-contiguous.
    ``rng``: a ``numpy.random.Generator`` (used as given, so the caller can
    keep drawing from it in step, e.g. for augmentation), an int seed or None
    (fresh entropy). ``Trainer`` passes ``numpy.random.default_rng([seed, epoch])``
    each epoch.
    """

    def __init__(self, X, y=None, batch_size=64, shuffle=False, rng=None, drop_last=False):
        if not isinstance(X, np.ndarray) or X.ndim < 1:
            raise TypeError(
                f"X must be a numpy.ndarray with samples along its first axis, got "
                f"{type(X).__name__} {getattr(X, 'shape', '')}".rstrip()
            )
        if y is not None:
            if not isinstance(y, np.ndarray) or y.ndim < 1:
                raise TypeError(f"y must be a numpy.ndarray or None, got {type(y).__name__}")
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"y has {y.shape[0]} rows but X has {X.shape[0]}: one label per sample")
        self.X = X
        self.y = y
        self.batch_size = as_int(batch_size, "batch_size", 1)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.rng = make_rng(rng, "rng") if self.shuffle else None

    @property
    def num_samples(self):
        """N, the number of samples (rows of X)."""
        return self.X.shape[0]

    def __len__(self):
        n, b = self.num_samples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        X, y, b = self.X, self.y, self.batch_size
        stop = len(self) * b
        if self.shuffle:
            order = self.rng.permutation(self.num_samples)
            for i in range(0, stop, b):
                idx = order[i:i + b]
                yield X[idx], (None if y is None else y[idx])
        else:
            for i in range(0, stop, b):
                yield X[i:i + b], (None if y is None else y[i:i + b])

    def __repr__(self):
        return (f"BatchLoader(num_samples={self.num_samples}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")
