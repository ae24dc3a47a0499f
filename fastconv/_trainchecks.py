"""What :class:`fastconv.train.Trainer` checks of its data, and evaluation in batches.

A training task is "classification" (y: 1-d integer class labels, the model
outputs class scores (N, num_classes), accuracy is measured) or "regression"
(y: float targets of the model's dtype, one per sample, each of the shape of
the model's output for one sample; no accuracy). :func:`task_of` decides:
the trainer's ``task`` when given, else the loss (SoftmaxCrossEntropy:
classification, MSELoss: regression), else y's dtype (integers:
classification, floats: regression).

Every value of X (and of y for regression) must be finite: a NaN or an
infinity in the data would only show up as a non-finite training loss, so it
is reported up front with the sample's index and the value.
"""

from __future__ import annotations

import numpy as np

from ._args import as_int, first_nonfinite
from .data.loader import BatchLoader
from .nn.losses import MSELoss, SoftmaxCrossEntropy

__all__ = ["TASKS", "task_of", "check_X", "check_data", "evaluate", "batched_outputs", "softmax"]

TASKS = ("classification", "regression")


def task_of(task, loss, y=None):
    """The task: ``task`` when given (one of :data:`TASKS`), else from ``loss``, else from
    ``y``'s dtype (None when nothing tells)."""
    if task is not None:
        return task
    if isinstance(loss, SoftmaxCrossEntropy):
        return "classification"
    if isinstance(loss, MSELoss):
        return "regression"
    if y is not None:
        return "regression" if np.asarray(y).dtype.kind == "f" else "classification"
    return None


def check_finite(a, what):
    """ValueError naming the first sample of ``a`` holding a NaN or an infinity, and its value."""
    found = first_nonfinite(a)
    if found is None:
        return
    index, value, rows = found
    where = f"{what}[{index[0]}]"
    at = f" (at {what}[{', '.join(str(i) for i in index)}])" if len(index) > 1 else ""
    more = f"; {rows} samples hold a NaN or an infinity" if rows > 1 else ""
    raise ValueError(
        f"{where} holds {value}{at}{more}: the data must be finite; fix or drop "
        f"{'those samples' if rows > 1 else 'that sample'} before training"
    )


def check_X(X, name, dtype):
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


def _output(model, X):
    """The model's output for the first image of X, in eval mode."""
    was = model.training
    model.eval()
    try:
        return model.forward(np.ascontiguousarray(X[:1]))
    finally:
        model.train(was)


def _check_labels(y, X, name, model, loss):
    if y.dtype.kind not in "iu":
        hint = ""
        if y.dtype.kind == "f":
            hint = (f"; {type(loss).__name__} is a classification loss: for float targets "
                    "(regression) use a regression loss such as fastconv.nn.MSELoss")
        raise TypeError(f"{name}: y must be an integer array of class labels, got dtype {y.dtype}{hint}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{name}: y must be a 1-d array of {X.shape[0]} labels (one per image of X), got shape {y.shape}"
        )
    out = _output(model, X)
    if not isinstance(out, np.ndarray) or out.ndim != 2:
        shape = getattr(out, "shape", None)
        raise ValueError(
            f"the model must output class scores of shape (N, num_classes), got shape {shape}"
        )
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= out.shape[1]:
        raise ValueError(
            f"{name}: y holds labels in [{lo}, {hi}] but the model has {out.shape[1]} outputs; "
            f"labels must be in [0, {out.shape[1]})"
        )


def _check_targets(y, X, name, model, loss):
    if y.dtype.kind != "f":
        raise TypeError(
            f"{name}: y must be a float array of regression targets for {type(loss).__name__}, got "
            f"dtype {y.dtype}; for integer class labels use fastconv.nn.SoftmaxCrossEntropy"
        )
    if y.dtype != model.dtype:
        raise TypeError(
            f"{name}: y has dtype {y.dtype} but the model is {model.dtype}: convert it with "
            f"y.astype(numpy.{model.dtype.name}) (fastconv never mixes dtypes silently)"
        )
    if y.ndim < 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"{name}: y must hold one target per image of X ({X.shape[0]}), got shape {y.shape}")
    out = _output(model, X)
    if not isinstance(out, np.ndarray) or out.shape[1:] != y.shape[1:]:
        per = tuple(getattr(out, "shape", (None,))[1:])
        raise ValueError(
            f"{name}: y has shape {y.shape}, but the model's output for one image has shape "
            f"{per}: y must have shape (N,) + {per}"
            + (f", e.g. y.reshape(-1, {per[0]})" if len(per) == 1 and y.ndim == 1 else "")
        )
    check_finite(y, f"{name}: y")


def check_data(data, name, model, loss, task):
    """``(X, y, task)`` of the pair ``data`` = (X, y) after every check: X's type, shape,
    dtype and values, y's against the task and the model's output (one image is run
    through the model in eval mode)."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be an (X, y) pair of arrays, got {type(data).__name__}")
    X, y = data
    X = check_X(X, name, model.dtype)
    check_finite(X, f"{name}: X")
    if not isinstance(y, np.ndarray):
        y = np.asarray(y)
    task = task_of(task, loss, y)
    if task == "classification":
        _check_labels(y, X, name, model, loss)
    else:
        _check_targets(y, X, name, model, loss)
    return X, y, task


def batched_outputs(model, X, y, batch_size):
    """[(output, target batch)] of each batch of ``X`` (and ``y``, or None), in eval mode."""
    was = model.training
    model.eval()
    try:
        return [(model.forward(np.ascontiguousarray(xb)), yb)
                for xb, yb in BatchLoader(X, y, batch_size)]
    finally:
        model.train(was)


def evaluate(model, data, loss=None, batch_size=256, task=None, *, _checked=False):
    """Mean loss (and accuracy, for classification) of ``model`` on ``data`` = (X, y), in
    eval mode, in batches of ``batch_size``; the model's mode is restored afterwards.

    ``loss``: default SoftmaxCrossEntropy for integer labels, MSELoss for float targets.
    Returns ``{"loss", "accuracy", "n"}`` (classification) or ``{"loss", "n"}`` (regression).
    """
    batch_size = as_int(batch_size, "batch_size", 1)
    if loss is None:
        y = data[1] if isinstance(data, (tuple, list)) and len(data) == 2 else None
        kind = task_of(task, None, y)
        loss = MSELoss() if kind == "regression" else SoftmaxCrossEntropy()
    if _checked:
        X, y = data
    else:
        X, y, task = check_data(data, "data", model, loss, task)
    task = task_of(task, loss, y)
    total = 0.0
    correct = 0
    for out, yb in batched_outputs(model, X, y, batch_size):
        total += loss.forward(out, yb) * len(yb)
        if task == "classification":
            correct += int(np.count_nonzero(out.argmax(axis=1) == yb))
    n = X.shape[0]
    if task == "classification":
        return {"loss": total / n, "accuracy": correct / n, "n": n}
    return {"loss": total / n, "n": n}


def softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z
