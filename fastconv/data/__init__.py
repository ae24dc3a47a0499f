"""Datasets and data augmentation.

Real datasets, read from their standard files into ``float32`` NCHW arrays
scaled to [0, 1] with ``int64`` labels::

    X, y = fastconv.data.mnist(split="train")          # (60000, 1, 28, 28), (60000,)
    X, y = fastconv.data.fashion_mnist(split="test")   # (10000, 1, 28, 28), (10000,)
    X, y = fastconv.data.cifar10(split="train")        # (50000, 3, 32, 32), (50000,)

Each loader looks in ``root`` (default: a per-dataset cache directory, see
:func:`default_root`), downloads the missing files from the standard locations
when ``download=True``, and checks every file against the published digests in
:data:`CHECKSUMS` before it reads it. MNIST and Fashion-MNIST are read from
the IDX files (gzip or uncompressed); a gzip file is accepted when either its
own bytes or its decompressed content match a known digest, so a recompressed
copy of the official data is fine. CIFAR-10 is read from the pickled "python
version" batches, each verified before it is unpickled, and unpickled by a
restricted unpickler that can build nothing but plain containers and uint8
NumPy arrays. A truncated, corrupt or unknown file is a ``ValueError`` that
names the file and how to fix it; there is never a silent partial load.

Built in, with no download: :func:`shapes`, ten classes of procedurally drawn
28x28 line figures (:data:`SHAPES_CLASSES`) that a small CNN learns to well
above 90% test accuracy.

Augmentation (NumPy, never in place): :func:`random_flip`,
:func:`random_shift`, :func:`random_crop`, :func:`add_noise`, and
:class:`Augment`, which chains them into one ``aug(X, rng)`` callable that a
training loop applies to each batch.

The package is plain Python and NumPy: it never calls the native kernels.
It imports nothing of fastconv but :mod:`fastconv._args` and
:mod:`fastconv._fileio`. Its modules, one concern each:

- :mod:`~fastconv.data.download`: the digest table, mirrors, cache folder,
  verified and atomic downloads (shared by the file-backed loaders);
- :mod:`~fastconv.data.mnist`: IDX parsing, :func:`mnist`, :func:`fashion_mnist`;
- :mod:`~fastconv.data.cifar`: :func:`cifar10` (safe extraction and unpickling);
- :mod:`~fastconv.data.shapes`: the built-in :func:`shapes` set;
- :mod:`~fastconv.data.augment`: augmentation.

The public names are re-exported here. Note that the functions ``mnist`` and
``shapes`` shadow the submodules of the same name as attributes of this
package; reach a submodule with ``importlib.import_module("fastconv.data.mnist")``
(or ``sys.modules``), e.g. to monkeypatch its private helpers.
"""

from __future__ import annotations

from .augment import Augment, add_noise, random_crop, random_flip, random_shift
from .cifar import CIFAR10_CLASSES, cifar10
from .download import (
    CHECKSUMS,
    MIRRORS,
    REMEDIES,
    DataFileError,
    DatasetNotFoundError,
    DownloadError,
    _check_split,
    advice,
    default_root,
)
from .mnist import FASHION_MNIST_CLASSES, MNIST_CLASSES, fashion_mnist, mnist, read_idx
from .shapes import SHAPES_CLASSES, shapes, shapes_split

from .loader import BatchLoader

__all__ = [
    "BatchLoader",
    "CHECKSUMS",
    "CIFAR10_CLASSES",
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "MIRRORS",
    "MNIST_CLASSES",
    "SHAPES_CLASSES",
    "Augment",
    "DataFileError",
    "DatasetNotFoundError",
    "DownloadError",
    "REMEDIES",
    "advice",
    "add_noise",
    "cifar10",
    "default_root",
    "fashion_mnist",
    "load",
    "mnist",
    "random_crop",
    "random_flip",
    "random_shift",
    "read_idx",
    "shapes",
    "shapes_split",
]

#: Names accepted by :func:`load`.
DATASETS = ("mnist", "fashion_mnist", "cifar10", "shapes")


def load(name, split="train", root=None, download=True):
    """Load a dataset by name (one of :data:`DATASETS`): ``(X, y)`` for ``split``.

    For "shapes", split "train" is 6,000 images and "test" 1,000 (the two
    streams of ``shapes_split(seed=0)``); ``root`` and ``download`` are ignored.
    """
    if name not in DATASETS:
        raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
    if name == "shapes":
        _check_split(split)
        train, test = shapes_split(6000, 1000, seed=0)
        return train if split == "train" else test
    return {"mnist": mnist, "fashion_mnist": fashion_mnist, "cifar10": cifar10}[name](
        root=root, split=split, download=download
    )

