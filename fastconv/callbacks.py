"""Training callbacks for :class:`fastconv.train.Trainer`: early stopping and checkpoints.

A callback is any object with some of the hooks of :class:`Callback`;
``Trainer.fit(..., callbacks=[...])`` calls them in the order given::

    from fastconv.callbacks import EarlyStopping, ModelCheckpoint
    trainer.fit((X, y), epochs=20, val=(Xt, yt),
                callbacks=[EarlyStopping(patience=2), ModelCheckpoint("run.npz", every=5)])
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ._args import as_float, as_int

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint"]


class Callback:
    """Base class of the training callbacks; every hook is optional.

    ``on_train_begin(trainer)`` before the first epoch of a ``fit``;
    ``on_epoch_end(trainer, epoch, logs)`` after each epoch (``epoch`` counts
    from 1; ``logs`` holds ``loss``, ``accuracy``, ``lr`` and, with validation
    data, ``val_loss`` and ``val_accuracy``), returning True to stop training;
    ``on_train_end(trainer, history)`` when ``fit`` finishes, also after an
    early stop. Any object with some of these methods works as a callback.
    """

    def on_train_begin(self, trainer):
        pass

    def on_epoch_end(self, trainer, epoch, logs):
        return False

    def on_train_end(self, trainer, history):
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs
    in a row (``patience=0``: at the first epoch without improvement).

    ``monitor``: a key of the epoch logs ("val_loss", "val_accuracy", "loss",
    "accuracy"); ``mode`` "min", "max" or "auto" (max for accuracies, min
    otherwise). With ``restore_best`` (default) the model gets back the
    weights of its best epoch when training ends, if a later epoch was worse.
    After ``fit``: ``best`` (the best value), ``best_epoch`` and
    ``stopped_epoch`` (0 when it did not stop training).
    """

    def __init__(self, monitor="val_loss", patience=3, restore_best=True, min_delta=0.0, mode="auto"):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a str such as 'val_loss', got {type(monitor).__name__}")
        patience = as_int(patience, "patience", minimum=0)
        min_delta = as_float(min_delta, "min_delta", low=0.0)
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.monitor = monitor
        self.patience = patience
        self.restore_best = bool(restore_best)
        self.min_delta = min_delta
        self.mode = mode
        self._reset()

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0
        self.stopped_epoch = 0
        self.wait = 0
        self._best_state = None

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, trainer):
        self._reset()

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            hint = " (fit got no val=(X, y) data)" if self.monitor.startswith("val_") else ""
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which is not among the epoch logs "
                f"{sorted(logs)}{hint}"
            )
        value = float(logs[self.monitor])
        if self.best_epoch == 0 or self._improved(value):
            self.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best:
                self._best_state = trainer.model.state_dict()
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, trainer, history):
        if self.restore_best and self._best_state is not None and self.best_epoch != history.epochs:
            trainer.model.load_state_dict(self._best_state)

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"restore_best={self.restore_best}, min_delta={self.min_delta}, mode={self.mode!r})")


class ModelCheckpoint(Callback):
    """Write a resumable checkpoint (see :meth:`Trainer.save_checkpoint`) to ``path``
    every ``every`` epochs and after the last one. The file is replaced atomically,
    so an interrupted run always leaves the previous complete checkpoint."""

    def __init__(self, path, every=1):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        self.path = Path(path)
        self.every = as_int(every, "every", minimum=1)
        self._last = None

    def on_train_begin(self, trainer):
        self._last = None

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch % self.every == 0:
            trainer.save_checkpoint(self.path)
            self._last = epoch
        return False

    def on_train_end(self, trainer, history):
        if history.epochs and self._last != history.epochs and trainer.epoch == history.epochs:
            trainer.save_checkpoint(self.path)
            self._last = history.epochs

    def __repr__(self):
        return f"ModelCheckpoint({str(self.path)!r}, every={self.every})"
