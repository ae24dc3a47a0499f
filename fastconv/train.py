"""Training loop: :class:`Trainer` (fit / evaluate / predict) and its :class:`History`.

A classification trainer for :mod:`fastconv.nn` models::

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
dtype, y a 1-d integer array of N class labels in ``[0, num_outputs)``.

Determinism: epoch ``e`` (0-based) shuffles with
``numpy.random.default_rng([seed, e])`` (through :class:`BatchLoader`), and
that generator also drives the augmentation, so a run resumed from a
checkpoint sees exactly the batches the uninterrupted run would have seen and
ends with the same weights (bit for bit, for models without Dropout, whose
mask generator is not checkpointed).

The callbacks live in :mod:`fastconv.callbacks` and the file format
(:func:`save_model`, :func:`load_model`, :meth:`Trainer.save_checkpoint`) in
:mod:`fastconv.checkpoint`; both are re-exported here.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._args import as_int
from .data.loader import BatchLoader
from .callbacks import Callback, EarlyStopping, ModelCheckpoint
from .checkpoint import (
    CheckpointError,
    load_model,
    load_training_checkpoint,
    read_checkpoint,
    save_model,
    save_training_checkpoint,
)
from .nn.module import Module

__all__ = [
    "Trainer",
    "History",
    "Callback",
    "EarlyStopping",
    "ModelCheckpoint",
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
    ``val``); ``lr``: the learning rate used in each epoch;
    ``epoch_seconds``: wall time of each epoch's training steps.
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
    epochs: int = 0
    train_images: int = 0
    train_seconds: float = 0.0
    stopped_early: bool = False

    _KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds",
             "epochs", "images_per_second", "train_images", "train_seconds", "stopped_early")

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
        for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds"):
            h.__dict__[k] = [float(v) for v in d.get(k, [])]
        h.epochs = int(d.get("epochs", len(h.loss)))
        h.train_images = int(d.get("train_images", 0))
        h.train_seconds = float(d.get("train_seconds", 0.0))
        h.stopped_early = bool(d.get("stopped_early", False))
        return h


# ---------------------------------------------------------------- validation helpers


def _check_X(X, name, dtype):
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{name}: X must be a numpy.ndarray (N, C, H, W), got {type(X).__name__}")
    if X.ndim != 4:
        raise ValueError(f"{name}: X must be a 4-d array (N, C, H, W), got shape {X.shape}")
    if X.dtype.kind != "f":
        raise TypeError(f"{name}: X must be a float array, got dtype {X.dtype}")
    if X.dtype != dtype:
        raise TypeError(
            f"{name}: X has dtype {X.dtype} but the model is {dtype}: convert it with "
            f"X.astype(numpy.{dtype.name}) (fastconv never mixes dtypes silently)"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name}: X holds no images (shape {X.shape})")
    return X


def _check_pair(data, name, dtype):
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be an (X, y) pair of arrays, got {type(data).__name__}")
    X, y = data
    X = _check_X(X, name, dtype)
    if not isinstance(y, np.ndarray):
        y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name}: y must be an integer array of class labels, got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{name}: y must be a 1-d array of {X.shape[0]} labels (one per image of X), got shape {y.shape}"
        )
    return X, y


def _check_labels(y, num_outputs, name):
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_outputs:
        raise ValueError(
            f"{name}: y holds labels in [{lo}, {hi}] but the model has {num_outputs} outputs; "
            f"labels must be in [0, {num_outputs})"
        )


def _softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


# ---------------------------------------------------------------- Trainer


class Trainer:
    """Train a classifier ``model`` with ``loss`` and ``optimizer``.

    ``scheduler``: an optional learning-rate schedule (:mod:`fastconv.optim`),
    stepped once after every epoch. ``augment``: an optional callable
    ``augment(X_batch, rng) -> X_batch`` applied to each training batch (e.g.
    :class:`fastconv.data.Augment`). ``progress``: show a tqdm progress bar
    with the running loss and images/second on stderr during each epoch, and
    print a one-line summary per epoch on stdout; False prints nothing.

    ``trainer.epoch`` counts completed epochs; ``trainer.history`` is the
    :class:`History` of the last ``fit``.
    """

    def __init__(self, model, loss, optimizer, scheduler=None, augment=None, progress=True):
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
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.augment = augment
        self.progress = bool(progress)
        self.epoch = 0
        self.seed = 0
        self.history = History()
        self.stop_training = False

    # -- helpers -----------------------------------------------------------

    def _num_outputs(self, X):
        """Run one image through the model in eval mode to learn how many classes it scores."""
        was = self.model.training
        self.model.eval()
        try:
            out = self.model.forward(np.ascontiguousarray(X[:1]))
        finally:
            self.model.train(was)
        if not isinstance(out, np.ndarray) or out.ndim != 2:
            shape = getattr(out, "shape", None)
            raise ValueError(
                f"the model must output class scores of shape (N, num_classes), got shape {shape}"
            )
        return out.shape[1]

    def _prepare(self, data, name):
        X, y = _check_pair(data, name, self.model.dtype)
        _check_labels(y, self._num_outputs(X), name)
        return X, y

    def _bar(self, total, desc):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="img", leave=False, dynamic_ncols=True,
                    file=sys.stderr, smoothing=0.1)

    def _say(self, text):
        if self.progress:
            from tqdm import tqdm

            tqdm.write(text, file=sys.stdout)
            sys.stdout.flush()

    # -- training ----------------------------------------------------------

    def fit(self, train, epochs, batch_size=64, val=None, callbacks=(), seed=0,
            checkpoint=None, checkpoint_every=1, resume=None):
        """Train until epoch ``epochs`` (a total, counted from 1); returns the :class:`History`.

        ``train`` / ``val``: ``(X, y)`` pairs. Each epoch shuffles the
        training set into mini-batches of ``batch_size`` (the last, smaller
        batch included), takes one optimiser step per batch, then evaluates
        ``val`` (if given), steps the scheduler, writes the checkpoint and
        calls the callbacks; a callback returning True (or setting
        ``trainer.stop_training``) ends training after that epoch.

        ``checkpoint``: a path to write a resumable checkpoint to every
        ``checkpoint_every`` epochs (atomically). ``resume``: a checkpoint path
        to continue from (its weights, optimiser and scheduler state, epoch and
        history are restored first, and training goes on from its epoch to
        ``epochs``), or True to continue from this trainer's current epoch
        (after :meth:`load_checkpoint`). A fresh ``fit`` starts at epoch 0 with
        an empty history but keeps the model's current weights. Pass the same
        ``seed`` and data as the original run for identical results.
        """
        epochs = as_int(epochs, "epochs", 0)
        batch_size = as_int(batch_size, "batch_size", 1)
        seed = as_int(seed, "seed", 0)
        if resume is not None and resume is not False:
            if resume is True:
                start = self.epoch
            else:
                start = self.load_checkpoint(resume)
                if self._ckpt_seed is not None and self._ckpt_seed != seed:
                    warnings.warn(
                        f"resuming a run made with seed={self._ckpt_seed} with seed={seed}: the "
                        "batches will differ from the uninterrupted run", stacklevel=2)
            history = History.from_dict(self.history.to_dict())
        else:
            start = 0
            history = History()
        callbacks = list(callbacks) if callbacks is not None else []
        for i, cb in enumerate(callbacks):
            if not any(hasattr(cb, h) for h in ("on_train_begin", "on_epoch_end", "on_train_end")):
                raise TypeError(
                    f"callbacks[{i}] ({type(cb).__name__}) has none of on_train_begin, "
                    "on_epoch_end, on_train_end"
                )
        if checkpoint is not None:
            callbacks.insert(0, ModelCheckpoint(checkpoint, every=checkpoint_every))
        X, y = self._prepare(train, "train")
        if val is not None:
            Xv, yv = self._prepare(val, "val")
        self.seed = seed
        self.epoch = start
        self.history = history
        self.stop_training = False

        model = self.model
        prev_mode, prev_input_grad = model.training, model.input_grad
        model.input_grad = False
        try:
            for cb in callbacks:
                if hasattr(cb, "on_train_begin"):
                    cb.on_train_begin(self)
            for e in range(start, epochs):
                logs = self._train_epoch(X, y, batch_size, e, epochs)
                if val is not None:
                    v = self.evaluate((Xv, yv), _checked=True)
                    logs["val_loss"], logs["val_accuracy"] = v["loss"], v["accuracy"]
                    history.val_loss.append(v["loss"])
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
            model.train(prev_mode)
            model.input_grad = prev_input_grad
        return history

    def _train_epoch(self, X, y, batch_size, e, epochs):
        model, loss_fn, opt = self.model, self.loss, self.optimizer
        N = X.shape[0]
        rng = np.random.default_rng([self.seed, e])
        batches = BatchLoader(X, y, batch_size, shuffle=True, rng=rng)
        lr = float(getattr(opt, "lr", float("nan")))
        bar = self._bar(N, f"epoch {e + 1}/{epochs}")
        model.train()
        total_loss = 0.0
        correct = 0
        seen = 0
        t0 = time.perf_counter()
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
                logits = model.forward(xb)
                value = loss_fn.forward(logits, yb)
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"the training loss became {value} in epoch {e + 1} (batch starting at "
                        f"image {seen} of the shuffled order): lower the learning rate (now {lr})"
                    )
                opt.zero_grad()
                model.backward(loss_fn.backward())
                opt.step()
                total_loss += value * n
                correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
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
        h.accuracy.append(correct / N)
        h.lr.append(lr)
        h.epoch_seconds.append(dt)
        h.train_images += N
        h.train_seconds += dt
        return {"loss": total_loss / N, "accuracy": correct / N, "lr": lr,
                "seconds": dt, "images_per_second": N / dt if dt > 0 else 0.0}

    @staticmethod
    def _summary(epoch, epochs, logs):
        width = len(str(epochs))
        parts = [f"epoch {epoch:>{width}}/{epochs}", f"loss {logs['loss']:.4f}",
                 f"acc {100 * logs['accuracy']:6.2f}%"]
        if "val_loss" in logs:
            parts += [f"val_loss {logs['val_loss']:.4f}", f"val_acc {100 * logs['val_accuracy']:6.2f}%"]
        parts += [f"{logs['images_per_second']:,.0f} img/s", f"{logs['seconds']:.1f} s"]
        return "  ".join(parts)

    # -- inference ---------------------------------------------------------

    def _batched_logits(self, X, y, batch_size):
        """(logits, labels) of each batch of ``X`` (and ``y``, or None), in eval mode."""
        model = self.model
        was = model.training
        model.eval()
        try:
            return [(model.forward(np.ascontiguousarray(xb)), yb)
                    for xb, yb in BatchLoader(X, y, batch_size)]
        finally:
            model.train(was)

    def evaluate(self, data, batch_size=256, *, _checked=False):
        """Loss and accuracy of the model on ``data`` = (X, y), in eval mode.

        Returns ``{"loss": mean loss, "accuracy": fraction correct, "n": images}``;
        the model's train/eval mode is restored afterwards.
        """
        batch_size = as_int(batch_size, "batch_size", 1)
        X, y = data if _checked else self._prepare(data, "data")
        total = 0.0
        correct = 0
        for logits, yb in self._batched_logits(X, y, batch_size):
            total += self.loss.forward(logits, yb) * len(yb)
            correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
        n = X.shape[0]
        return {"loss": total / n, "accuracy": correct / n, "n": n}

    def predict(self, X, batch_size=256):
        """Class probabilities (softmax of the model's outputs), shape (N, num_classes),
        computed in eval mode in batches; rows sum to 1."""
        batch_size = as_int(batch_size, "batch_size", 1)
        X = _check_X(X, "predict", self.model.dtype)
        outs = [logits for logits, _ in self._batched_logits(X, None, batch_size)]
        if outs[0].ndim != 2:
            raise ValueError(
                f"predict needs a model that outputs class scores (N, num_classes), got shape {outs[0].shape}"
            )
        return np.concatenate([_softmax(o) for o in outs], axis=0)

    # -- checkpoints -------------------------------------------------------

    def save_checkpoint(self, path):
        """Write a resumable checkpoint to ``path`` (.npz, atomically): model weights
        and buffers, optimiser and scheduler state, epoch, seed and history
        (:func:`fastconv.checkpoint.save_training_checkpoint`). Returns the path."""
        return save_training_checkpoint(path, self.model, self.optimizer, self.scheduler,
                                        epoch=self.epoch, seed=self.seed, history=self.history.to_dict())

    _ckpt_seed = None

    def load_checkpoint(self, path):
        """Restore a checkpoint written by :meth:`save_checkpoint`; returns its epoch.

        Everything is checked before anything is changed: a checkpoint of another
        architecture or optimiser is a :class:`CheckpointError`.
        """
        state = load_training_checkpoint(path, self.model, self.optimizer, self.scheduler)
        self.epoch = state["epoch"]
        self._ckpt_seed = state["seed"]
        self.history = History.from_dict(state["history"])
        return self.epoch

    def resume(self, path):
        """Alias of :meth:`load_checkpoint`; then ``fit(..., resume=True)`` continues the run."""
        return self.load_checkpoint(path)

    def __repr__(self):
        return (f"Trainer(model={type(self.model).__name__}, loss={self.loss!r}, "
                f"optimizer={self.optimizer!r}, epoch={self.epoch})")
