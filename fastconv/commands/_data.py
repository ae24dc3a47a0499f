"""The datasets of the ``fastconv`` commands (train, evaluate): loading a split, and data
errors worded for the command line.

:mod:`fastconv.data`'s errors carry their problem and their remedies apart
(``exc.problem``, ``exc.remedies``); their messages give the Python API's
advice ("pass root=", "download=True"). :func:`data_error` words the same
remedies with the command's options (``--data-dir``, ``--no-download``).
"""

from __future__ import annotations

from pathlib import Path

from .. import data
from ._common import CLIError, one_line

__all__ = ["DATASETS", "CLI_REMEDIES", "data_error", "load_split", "num_classes"]

DATASETS = ("shapes", "mnist", "fashion_mnist", "cifar10")

#: dataset -> its class names in fastconv.data
_CLASS_NAMES = {"shapes": data.SHAPES_CLASSES, "mnist": data.MNIST_CLASSES,
                "fashion_mnist": data.FASHION_MNIST_CLASSES, "cifar10": data.CIFAR10_CLASSES}

#: The remedies of fastconv.data's errors (:data:`fastconv.data.REMEDIES`) in the command's words.
CLI_REMEDIES = {
    "root": "point --data-dir at a directory that has them",
    "download": "drop --no-download to download them",
    "writable_root": "pass --data-dir a writable directory, or set FASTCONV_DATA",
    "replace_file": "delete {path} and run the command again without --no-download to fetch a "
                    "good copy, or replace it with a copy of the official file",
}

#: ``fastconv train``'s default sizes of the built-in shapes set.
SHAPES_SIZES = {"train": 8000, "test": 2000}


def data_error(exc, dataset):
    """A :class:`CLIError` for a failure to load ``dataset``: ``exc``'s problem and its
    remedies in the command's words (its plain message when it carries none)."""
    if getattr(exc, "remedies", None) is not None and getattr(exc, "problem", None):
        text = f"{exc.problem} {data.advice(exc.remedies, CLI_REMEDIES)}".strip()
    else:
        text = one_line(exc)
    return CLIError(f"cannot load the {dataset} dataset: {' '.join(text.split())}")


def load_split(dataset, split, data_dir=None, download=True, seed=0, sizes=None):
    """``(X, y)`` of ``split`` ("train" or "test") of ``dataset``; errors become a CLIError.

    shapes: drawn as ``fastconv train`` draws it, ``shapes_split(n_train, n_test, seed)``
    with ``sizes`` {"train": n, "test": n} (default :data:`SHAPES_SIZES`); the others
    are read from ``data_dir`` (default: fastconv.data's cache folder), downloaded when
    missing unless ``download`` is False.
    """
    if dataset == "shapes":
        n = dict(SHAPES_SIZES, **{k: v for k, v in (sizes or {}).items() if v})
        train, test = data.shapes_split(n["train"], n["test"], seed=seed)
        return train if split == "train" else test
    loader = {"mnist": data.mnist, "fashion_mnist": data.fashion_mnist, "cifar10": data.cifar10}[dataset]
    root = Path(data_dir).expanduser() if data_dir else None
    try:
        return loader(root=root, split=split, download=download)
    except (ConnectionError, ValueError, OSError) as exc:
        raise data_error(exc, dataset) from None


def num_classes(dataset, *label_arrays):
    """How many classes ``dataset`` has (its class-name list, else the largest label + 1)."""
    names = _CLASS_NAMES.get(dataset)
    if names:
        return len(names)
    return int(max(int(y.max()) for y in label_arrays)) + 1
