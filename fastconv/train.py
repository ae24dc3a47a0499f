"""Training loop: :class:`Trainer` (fit / evaluate / predict) and its :class:`History`.

A trainer for :mod:`fastconv.nn` models, classifiers and regressors::

    from fastconv import data, models, nn, optim
    from fastconv.train import Trainer, EarlyStopping

    (X, y), (Xt, yt) = data.shapes_split(6000, 1000)
    model = models.lenet5(seed=0)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = Trainer(model, nn.SoftmaxCrossEntropy(), opt)
    history = trainer.fit((X, y), epochs=3, batch_size=64, val=(Xt, yt),
                          callbacks=[EarlyStopping(patience=2)], checkpoint="run.npz")
    trainer.evaluate((Xt, yt))          # {"loss": ..., "accuracy": ..., "n": 1000}
    probs = trainer.predict(Xt)          # (1000, 10), rows sum to 1

Data are ``(X, y)`` pairs: X a 4-d float array (N, C, H, W) of the model's
dtype. Classification (SoftmaxCrossEntropy, or integer y): y a 1-d integer
array of N class labels in ``[0, num_outputs)``; accuracy is measured.
Regression (MSELoss, or float y): y a float array of the model's dtype, one
target per image, each of the shape of the model's output for one image
(``(N, k)`` for an output of k values); no accuracy, and :meth:`predict`
returns the outputs. Every value of X (and of a regression y) must be
finite: a NaN or an infinity is reported up front, naming the sample.

Determinism: epoch ``e`` (0-based) shuffles with
``numpy.random.default_rng([seed, e])`` (through :class:`BatchLoader`), and
that generator also drives the augmentation, so a run resumed from a
checkpoint sees exactly the batches the uninterrupted run would have seen and
ends with the same weights (bit for bit, for models without Dropout, whose
mask generator is not checkpointed).

The callbacks live in :mod:`fastconv.callbacks`, the data checks in
:mod:`fastconv._trainchecks` and the file format (:func:`save_model`,
:func:`load_model`, :meth:`Trainer.save_checkpoint`) in
:mod:`fastconv.checkpoint`; the public names are re-exported here.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._args import as_bool, as_int
from ._trainchecks import TASKS, batched_outputs, check_data, check_X, evaluate, softmax, task_of
from .callbacks import Callback, EarlyStopping, ModelCheckpoint
from .checkpoint import (
    CheckpointError,
    load_model,
    load_training_checkpoint,
    read_checkpoint,
    resume_conflicts,
    save_model,
    save_training_checkpoint,
    training_settings,
)
from .data.loader import BatchLoader
from .distributed.parallel import DataParallel, from_option
from .nn.module import Module

__all__ = [
    "Trainer",
    "History",
    "Callback",
    "EarlyStopping",
    "ModelCheckpoint",
    "evaluate",
    "save_model",
    "load_model",
    "read_checkpoint",
    "CheckpointError",
]


# ---------------------------------------------------------------- History


@dataclass
class History:
    """What :meth:`Trainer.fit` measured, one list entry per epoch run.

    ``loss`` / ``accuracy``: training loss and accuracy over each epoch
    (averaged over its batches, measured while training); ``val_loss`` /
    ``val_accuracy``: on the validation set after each epoch (empty without
    ``val``); the accuracies stay empty for regression; ``lr``: the learning
    rate used in each epoch;
    ``epoch_seconds``: wall time of each epoch's training steps;
    ``allreduce_seconds`` / ``wait_seconds``: of that, the time spent summing
    the gradients over the ranks, and waiting for the slowest rank before it
    (data-parallel runs only, see :mod:`fastconv.distributed`).
    ``epochs``: number of epochs completed (counting those before a resume);
    ``images_per_second``: training throughput over all of them;
    ``stopped_early``: True when a callback stopped training.

    Dict-like: ``history["val_accuracy"]``, ``history.keys()``,
    ``history.to_dict()``.
    """

    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    epoch_seconds: list = field(default_factory=list)
    allreduce_seconds: list = field(default_factory=list)
    wait_seconds: list = field(default_factory=list)
    epochs: int = 0
    train_images: int = 0
    train_seconds: float = 0.0
    stopped_early: bool = False

    _KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds",
             "allreduce_seconds", "wait_seconds", "epochs", "images_per_second", "train_images",
             "train_seconds", "stopped_early")

    @property
    def images_per_second(self):
        """Training images processed per second of training (0.0 before any epoch)."""
        return self.train_images / self.train_seconds if self.train_seconds > 0 else 0.0

    def keys(self):
        return list(self._KEYS)

    def __getitem__(self, key):
        if key not in self._KEYS:
            raise KeyError(f"History has no field {key!r}; fields: {', '.join(self._KEYS)}")
        return getattr(self, key)

    def __contains__(self, key):
        return key in self._KEYS

    def items(self):
        return [(k, self[k]) for k in self._KEYS]

    def to_dict(self):
        """A plain, JSON-serialisable dict of every field (lists copied)."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.items()}

    @classmethod
    def from_dict(cls, d):
        h = cls()
        for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds",
                  "allreduce_seconds", "wait_seconds"):
            h.__dict__[k] = [float(v) for v in d.get(k, [])]
        h.epochs = int(d.get("epochs", len(h.loss)))
        h.train_images = int(d.get("train_images", 0))
        h.train_seconds = float(d.get("train_seconds", 0.0))
        h.stopped_early = bool(d.get("stopped_early", False))
        return h


# ---------------------------------------------------------------- Trainer


def _schedule_length(T_max, plan, epochs, done):
    """The length a resumed schedule of length ``T_max`` gets for a run of ``epochs`` in
    all, ``done`` of them completed: ``epochs`` when the schedule spans the run it
    was planned for (``T_max`` equal to that run's planned epochs, taken as
    ``T_max`` itself when unknown) and epochs remain; else ``T_max``."""
    planned = (plan or {}).get("epochs") or T_max
    return epochs if T_max == planned and epochs > done else T_max


class Trainer:
    """Train ``model`` with ``loss`` and ``optimizer``: a classifier or a regressor.

    ``scheduler``: an optional learning-rate schedule (:mod:`fastconv.optim`),
    stepped once after every epoch. ``augment``: an optional callable
    ``augment(X_batch, rng) -> X_batch`` applied to each training batch (e.g.
    :class:`fastconv.data.Augment`).

    ``progress``: a tqdm progress bar with the running loss and images/second
    on stderr during each epoch: None (the default) shows it only when stderr
    is a terminal (never in a log file), True always, False never.
    ``verbose``: print a one-line summary of each epoch on stdout; None (the
    default) means ``progress is not False``, so ``progress=False`` alone still
    prints nothing. ``task``: "classification" or "regression" (see the module
    docstring); None decides from the loss (SoftmaxCrossEntropy, MSELoss),
    else from the targets' dtype. ``metadata``: a JSON-able dict stored in
    every checkpoint (``read_checkpoint(path)["metadata"]``; the ``fastconv``
    command keeps its options there). ``distributed``: data-parallel training
    over the ranks of an MPI job (:mod:`fastconv.distributed`): None (the
    default) when an MPI launcher started more than one process, True always
    (a :class:`fastconv.distributed.DistributedError` without mpi4py or a
    launcher), False never, or a :class:`fastconv.distributed.DataParallel`
    (e.g. with ``sync_batchnorm=True``); ``trainer.distributed`` is that object
    or None.

    ``trainer.epoch`` counts completed epochs; ``trainer.history`` is the
    :class:`History` of the last ``fit``; ``trainer.replanned`` is
    ``(old T_max, new T_max)`` after a resume re-planned the schedule (see
    :meth:`fit`), else None.
    """

    def __init__(self, model, loss, optimizer, scheduler=None, augment=None, progress=None,
                 verbose=None, task=None, metadata=None, distributed=None):
        if not isinstance(model, Module):
            raise TypeError(f"model must be a fastconv.nn.Module, got {type(model).__name__}")
        if not (hasattr(loss, "forward") and hasattr(loss, "backward")):
            raise TypeError(f"loss must have forward(logits, labels) and backward(), got {type(loss).__name__}")
        for meth in ("step", "zero_grad", "state_dict", "load_state_dict"):
            if not hasattr(optimizer, meth):
                raise TypeError(
                    f"optimizer must be a fastconv.optim optimiser (no {meth}()), got {type(optimizer).__name__}"
                )
        if scheduler is not None and not hasattr(scheduler, "step"):
            raise TypeError(f"scheduler must have a step() method, got {type(scheduler).__name__}")
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be callable as augment(X, rng), got {type(augment).__name__}")
        if task is not None and task not in TASKS:
            raise ValueError(f"task must be None, 'classification' or 'regression', got {task!r}")
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.augment = augment
        self.progress = as_bool(progress, "progress", allow_none=True)
        verbose = as_bool(verbose, "verbose", allow_none=True)
        self.verbose = self.progress is not False if verbose is None else verbose
        self.task = task
        self.metadata = metadata
        self.distributed = from_option(distributed)
        self._main = self.distributed is None or self.distributed.is_main
        self.epoch = 0
        self.seed = 0
        self.history = History()
        self.stop_training = False
        self.replanned = None
        self._plan = None          # {"epochs", "batch_size"} of the run so far (last fit or checkpoint)
        self._ckpt_seed = None     # the seed of the loaded checkpoint's run
        self._user_T_max = None    # the scheduler's T_max before a loaded checkpoint replaced it
        self._task_seen = None

    # -- output ------------------------------------------------------------

    def _bar(self, total, desc):
        if self.progress is False or not self._main:
            return None
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="img", leave=False, dynamic_ncols=True,
                    file=sys.stderr, smoothing=0.1, disable=None if self.progress is None else False)

    def _say(self, text):
        if self.verbose and self._main:
            print(text, file=sys.stdout, flush=True)

    # -- training ----------------------------------------------------------

    def fit(self, train, epochs, batch_size=64, val=None, callbacks=(), seed=0,
            checkpoint=None, checkpoint_every=1, resume=None):
        """Train until epoch ``epochs`` (a total, counted from 1); returns the :class:`History`.

        ``train`` / ``val``: ``(X, y)`` pairs, checked first (types, shapes,
        finite values). Each epoch shuffles the training set into mini-batches
        of ``batch_size`` (the last, smaller batch included), takes one
        optimiser step per batch, then evaluates ``val`` (if given), steps the
        scheduler, writes the checkpoint and calls the callbacks; a callback
        returning True (or setting ``trainer.stop_training``) ends training
        after that epoch. A fresh ``fit`` starts at epoch 0 with an empty
        history but keeps the model's current weights.

        ``checkpoint``: a path to write a resumable checkpoint to every
        ``checkpoint_every`` epochs (atomically). ``resume``: a checkpoint path
        to continue from (:meth:`load_checkpoint`), or True to go on from this
        trainer's state (after :meth:`load_checkpoint` or an earlier ``fit``).

        Resuming restores the run's *state*: weights, optimiser state, the
        schedule's position, epoch and history. Its *settings* must be yours:
        a model of another architecture, or an optimiser or scheduler of
        another type or with other settings (lr, momentum, ...) is a
        :class:`CheckpointError` listing the differences, raised before
        anything changes (the checkpoint's settings would otherwise silently
        replace yours). Another ``seed`` or ``batch_size`` is a warning (the
        batches then differ from the uninterrupted run's). ``epochs`` may
        differ from the run's planned total: the run is extended, or shortened
        (not below the epochs done). A schedule that spans the run (``T_max``
        equal to the run's planned epochs, as ``CosineLR(opt, T_max=epochs)``)
        is re-planned over the new total from the current position: the
        remaining epochs get the learning rates that a run planned for
        ``epochs`` from the start has at those epochs (the epochs done are not
        redone), and ``trainer.replanned`` tells. The scheduler you pass may
        have the run's ``T_max`` or the new total. Other schedules go on as
        stored. With the same ``seed``, data and ``epochs`` as the original
        run, the result is that of the uninterrupted run.
        """
        with self.distributed.guard() if self.distributed is not None else contextlib.nullcontext():
            return self._fit(train, epochs, batch_size, val, callbacks, seed, checkpoint,
                             checkpoint_every, resume)

    def _fit(self, train, epochs, batch_size, val, callbacks, seed, checkpoint, checkpoint_every, resume):
        dist = self.distributed
        epochs = as_int(epochs, "epochs", 0)
        batch_size = as_int(batch_size, "batch_size", 1)
        seed = as_int(seed, "seed", 0)
        if dist is not None:
            dist.check_batch_size(batch_size)
        callbacks = list(callbacks) if callbacks is not None else []
        for i, cb in enumerate(callbacks):
            if not any(hasattr(cb, h) for h in ("on_train_begin", "on_epoch_end", "on_train_end")):
                raise TypeError(
                    f"callbacks[{i}] ({type(cb).__name__}) has none of on_train_begin, "
                    "on_epoch_end, on_train_end"
                )
        X, y, task = check_data(train, "train", self.model, self.loss, self.task)
        if val is not None:
            Xv, yv, _ = check_data(val, "val", self.model, self.loss, task)
        if resume is not None and resume is not False:
            if resume is True:
                start = self.epoch
                if epochs < start:
                    raise ValueError(f"epochs={epochs} is a total counted from 1, and the run has "
                                     f"completed {start} epochs: pass epochs >= {start}")
                self._replan(epochs)
            else:
                start = self.load_checkpoint(resume, epochs=epochs)
            self._warn_if_other_batches(seed, batch_size)
            history = History.from_dict(self.history.to_dict())
        else:
            start = 0
            history = History()
            self.replanned = None
        if checkpoint is not None:
            callbacks.insert(0, ModelCheckpoint(checkpoint, every=checkpoint_every))
        self._task_seen = task
        self.seed = seed
        self.epoch = start
        self.history = history
        self.stop_training = False
        self._plan = {"epochs": epochs, "batch_size": batch_size}

        model = self.model
        prev_mode, prev_input_grad = model.training, model.input_grad
        model.input_grad = False
        if dist is not None:
            dist.begin(model)
        try:
            for cb in callbacks:
                if hasattr(cb, "on_train_begin"):
                    cb.on_train_begin(self)
            for e in range(start, epochs):
                logs = self._train_epoch(X, y, batch_size, e, epochs, task)
                if val is not None:
                    v = self.evaluate((Xv, yv), _checked=True)
                    logs["val_loss"] = v["loss"]
                    history.val_loss.append(v["loss"])
                    if "accuracy" in v:
                        logs["val_accuracy"] = v["accuracy"]
                        history.val_accuracy.append(v["accuracy"])
                if self.scheduler is not None:
                    self.scheduler.step()
                self.epoch = e + 1
                history.epochs = e + 1
                self._say(self._summary(e + 1, epochs, logs))
                stop = False
                for cb in callbacks:
                    if hasattr(cb, "on_epoch_end") and cb.on_epoch_end(self, e + 1, dict(logs)):
                        stop = True
                if stop or self.stop_training:
                    history.stopped_early = e + 1 < epochs
                    break
            for cb in callbacks:
                if hasattr(cb, "on_train_end"):
                    cb.on_train_end(self, history)
        finally:
            if dist is not None:
                dist.end(model)
            model.train(prev_mode)
            model.input_grad = prev_input_grad
        return history

    def _warn_if_other_batches(self, seed, batch_size):
        if self._ckpt_seed is not None and self._ckpt_seed != seed:
            warnings.warn(
                f"resuming a run made with seed={self._ckpt_seed} with seed={seed}: the "
                "batches will differ from the uninterrupted run", stacklevel=3)
        planned = (self._plan or {}).get("batch_size")
        if planned is not None and planned != batch_size:
            warnings.warn(
                f"resuming a run made with batch_size={planned} with batch_size={batch_size}: the "
                "batches will differ from the uninterrupted run", stacklevel=3)

    def _replan(self, epochs):
        """Re-plan a schedule that spans the run over ``epochs`` (see :meth:`fit`)."""
        sched = self.scheduler
        user, self._user_T_max = self._user_T_max, None
        if sched is None or not hasattr(sched, "T_max"):
            return
        old = sched.T_max
        new = _schedule_length(old, self._plan, epochs, self.epoch)
        if user is not None and user not in (old, new):
            raise CheckpointError(_t_max_conflict(user, old, new))
        if new != old:
            sched.T_max = new
            if hasattr(sched, "_lr") and hasattr(sched, "optimizer"):
                sched.optimizer.lr = sched._lr()  # the new schedule's rate at the current position
            self.replanned = (old, new)

    def _train_epoch(self, X, y, batch_size, e, epochs, task):
        model, loss_fn, opt = self.model, self.loss, self.optimizer
        N = X.shape[0]
        classify = task == "classification"
        rng = np.random.default_rng([self.seed, e])
        batches = BatchLoader(X, y, batch_size, shuffle=True, rng=rng)
        lr = float(getattr(opt, "lr", float("nan")))
        bar = self._bar(N, f"epoch {e + 1}/{epochs}")
        model.train()
        total_loss = 0.0
        correct = 0
        seen = 0
        t0 = time.perf_counter()
        dist = self.distributed
        try:
            for xb, yb in batches:
                n = len(yb)
                if self.augment is not None:
                    xb = self.augment(xb, rng)
                    if not isinstance(xb, np.ndarray) or xb.dtype != X.dtype or xb.shape[0] != n:
                        raise TypeError(
                            "augment must return an array of the batch's dtype and length, got "
                            f"{type(xb).__name__} {getattr(xb, 'dtype', '')} {getattr(xb, 'shape', '')}"
                        )
                if dist is not None:
                    value, hits = dist.train_step(model, loss_fn, opt, xb, yb, classify,
                                                  lambda v: _check_loss(v, e, seen, lr))
                    total_loss += value * n
                    correct += hits
                    seen += n
                else:
                    out = model.forward(xb)
                    value = loss_fn.forward(out, yb)
                    _check_loss(value, e, seen, lr)
                    opt.zero_grad()
                    model.backward(loss_fn.backward())
                    opt.step()
                    total_loss += value * n
                    if classify:
                        correct += int(np.count_nonzero(out.argmax(axis=1) == yb))
                    seen += n
                if bar is not None:
                    bar.update(n)
                    bar.set_postfix_str(f"loss {total_loss / seen:.4f}", refresh=False)
        finally:
            if bar is not None:
                bar.close()
        dt = time.perf_counter() - t0
        h = self.history
        h.loss.append(total_loss / N)
        h.lr.append(lr)
        h.epoch_seconds.append(dt)
        h.train_images += N
        h.train_seconds += dt
        logs = {"loss": total_loss / N, "lr": lr, "seconds": dt,
                "images_per_second": N / dt if dt > 0 else 0.0}
        if classify:
            h.accuracy.append(correct / N)
            logs["accuracy"] = correct / N
        if dist is not None:
            logs.update(dist.end_epoch(model, len(batches)))
            h.allreduce_seconds.append(logs["allreduce_seconds"])
            h.wait_seconds.append(logs["wait_seconds"])
        return logs

    @staticmethod
    def _summary(epoch, epochs, logs):
        width = len(str(epochs))
        parts = [f"epoch {epoch:>{width}}/{epochs}", f"loss {logs['loss']:.4f}"]
        if "accuracy" in logs:
            parts.append(f"acc {100 * logs['accuracy']:6.2f}%")
        if "val_loss" in logs:
            parts.append(f"val_loss {logs['val_loss']:.4f}")
        if "val_accuracy" in logs:
            parts.append(f"val_acc {100 * logs['val_accuracy']:6.2f}%")
        parts += [f"{logs['images_per_second']:,.0f} img/s", f"{logs['seconds']:.1f} s"]
        if "allreduce_seconds" in logs:
            parts.append(DataParallel.summary(logs))
        return "  ".join(parts)

    # -- inference ---------------------------------------------------------

    def evaluate(self, data, batch_size=256, *, _checked=False):
        """Loss, and for classification accuracy, of the model on ``data`` = (X, y), in
        eval mode (:func:`fastconv.train.evaluate`).

        Returns ``{"loss": mean loss, "accuracy": fraction correct, "n": images}``
        (regression: no "accuracy"); the model's train/eval mode is restored afterwards.
        """
        if _checked:
            X, y = data
            task = self._task_seen
        else:
            X, y, task = check_data(data, "data", self.model, self.loss, self.task)
        if self.distributed is not None:
            return self.distributed.evaluate(self.model, (X, y), self.loss, batch_size, task)
        return evaluate(self.model, (X, y), self.loss, batch_size, task, _checked=True)

    def predict(self, X, batch_size=256):
        """Classification: class probabilities (softmax of the model's outputs), shape
        (N, num_classes), rows sum to 1. Regression: the model's outputs. Computed in eval
        mode in batches."""
        batch_size = as_int(batch_size, "batch_size", 1)
        X = check_X(X, "predict", self.model.dtype)
        outs = [o for o, _ in batched_outputs(self.model, X, None, batch_size)]
        if (task_of(self.task, self.loss) or self._task_seen) == "regression":
            return np.concatenate(outs, axis=0)
        if outs[0].ndim != 2:
            raise ValueError(
                f"predict needs a model that outputs class scores (N, num_classes), got shape {outs[0].shape}"
            )
        return np.concatenate([softmax(o) for o in outs], axis=0)

    # -- checkpoints -------------------------------------------------------

    def save_checkpoint(self, path):
        """Write a resumable checkpoint to ``path`` (.npz, atomically): model weights
        and buffers, optimiser and scheduler state, epoch, seed, history, the run's plan
        (epochs, batch size) and ``metadata``
        (:func:`fastconv.checkpoint.save_training_checkpoint`). Returns the path. In a
        data-parallel run only rank 0 writes (the others return at once)."""
        if not self._main:
            return path
        return save_training_checkpoint(path, self.model, self.optimizer, self.scheduler,
                                        epoch=self.epoch, seed=self.seed, history=self.history.to_dict(),
                                        plan=self._plan, metadata=self.metadata)

    def load_checkpoint(self, path, epochs=None):
        """Restore a checkpoint written by :meth:`save_checkpoint`; returns its epoch.

        Everything is checked before anything is changed: a checkpoint of another
        architecture, or of a run with another optimiser or scheduler (type or
        settings), is a :class:`CheckpointError` listing the differences (see
        :meth:`fit`). ``epochs``: the new total of the run (>= the checkpoint's
        epoch), to re-plan the schedule now rather than in ``fit(resume=True)``.
        """
        settings = training_settings(path)
        done = settings["epoch"]
        problems = resume_conflicts(settings, self.optimizer, self.scheduler)
        user_T = getattr(self.scheduler, "T_max", None)
        if epochs is not None:
            epochs = as_int(epochs, "epochs", 0)
            if epochs < done:
                raise ValueError(f"{path} has completed {done} epochs; epochs={epochs} (a total "
                                 f"counted from 1) must be >= {done}")
            stored = settings["scheduler"] or {}
            if user_T is not None and "T_max" in stored:
                old = stored["T_max"]
                new = _schedule_length(old, settings["plan"], epochs, done)
                if user_T not in (old, new):
                    problems.append(_t_max_conflict(user_T, old, new))
        if problems:
            raise CheckpointError(
                f"{path} was written by a run with other settings than yours: {'; '.join(problems)}. "
                "Build the optimiser and scheduler as that run did to continue it "
                "(fastconv.checkpoint.training_settings(path) shows them), or start a new run"
            )
        state = load_training_checkpoint(path, self.model, self.optimizer, self.scheduler)
        self.epoch = state["epoch"]
        self._ckpt_seed = state["seed"]
        if state["seed"] is not None:
            self.seed = state["seed"]
        self.history = History.from_dict(state["history"])
        self._plan = state["plan"] or {"epochs": None, "batch_size": None}
        self._user_T_max = user_T
        self.replanned = None
        if epochs is not None:
            self._replan(epochs)
        return self.epoch

    def resume(self, path, epochs=None):
        """Alias of :meth:`load_checkpoint`; then ``fit(..., resume=True)`` continues the run."""
        return self.load_checkpoint(path, epochs)

    def __repr__(self):
        return (f"Trainer(model={type(self.model).__name__}, loss={self.loss!r}, "
                f"optimizer={self.optimizer!r}, epoch={self.epoch})")


def _check_loss(value, e, seen, lr):
    if not math.isfinite(value):
        raise FloatingPointError(
            f"the training loss became {value} in epoch {e + 1} (batch starting at "
            f"image {seen} of the shuffled order): lower the learning rate (now {lr})"
        )


def _t_max_conflict(user, old, new):
    again = f" (re-planned to the new total {new})" if new != old else ""
    return (f"scheduler T_max: yours is {user}, the checkpoint's schedule has T_max={old}{again}; "
            "pass " + (f"T_max={old} or {new}" if new != old else f"T_max={old}"))
