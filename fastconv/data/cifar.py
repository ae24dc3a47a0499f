"""CIFAR-10 from the pickled "python version" batches, read safely.

The archive is verified before it is extracted (only the batch files, through
tarfile's "data" filter, via a temporary folder), and each batch is verified
before it is unpickled, by a restricted unpickler that builds nothing but
plain containers and integer NumPy arrays.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np

from .download import (
    CHECKSUMS,
    MIRRORS,
    DatasetNotFoundError,
    _bad_file,
    _check_download,
    _check_split,
    _fetch,
    _removing_new_folders,
    _resolve_root,
    _unit_float,
    _verify_file_digest,
)

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = ("test_batch",)


# ---------------------------------------------------------------------------
# Restricted unpickling of the batch files
# ---------------------------------------------------------------------------


def _np_reconstruct_impl():
    core = getattr(np, "_core", None)
    if core is not None:
        return core.multiarray._reconstruct
    return np.core.multiarray._reconstruct  # pragma: no cover  (NumPy 1.x)


def _safe_reconstruct(subtype, shape, typecode):
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to reconstruct an array of type {subtype!r}")
    return _np_reconstruct_impl()(subtype, shape, typecode)


def _safe_dtype(spec, align=False, copy=False):
    if not isinstance(spec, (str, bytes)):
        raise pickle.UnpicklingError(f"refusing dtype specification {spec!r}")
    if isinstance(spec, bytes):
        spec = spec.decode("latin1")
    dt = np.dtype(spec)
    if dt.kind not in "biu":
        raise pickle.UnpicklingError(f"refusing dtype {dt} (only integer arrays are expected)")
    return np.dtype(spec, align, copy)


# The only globals a CIFAR-10 batch refers to: NumPy's array reconstruction
# helper (under its NumPy 1 and NumPy 2 module names), ndarray and dtype.
_CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _safe_dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and integer NumPy arrays; refuses any other global."""

    def find_class(self, module, name):
        try:
            return _CIFAR_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: a CIFAR-10 batch needs only "
                "NumPy array reconstruction"
            ) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing persistent id in a CIFAR-10 batch")


def _verify_file(path, name, loader="cifar10", src=None):
    """``path`` (or ``src``, its content as an open file) must match the digests of ``name``."""
    expected = tuple(CHECKSUMS["cifar10"][name].get("file", ()))
    _verify_file_digest(path if src is None else src, path, expected, loader)


def _unpickle_batch(path):
    """Unpickle one verified batch file with the restricted unpickler; validate its content."""
    data = Path(path).read_bytes()
    stream = io.BytesIO(data)
    try:
        obj = _RestrictedUnpickler(stream, encoding="latin1").load()
    except Exception as exc:  # noqa: BLE001  (any failure of a hostile or broken pickle is reported alike)
        raise ValueError(
            f"{path}: not a valid CIFAR-10 batch ({type(exc).__name__}: {exc})"
        ) from None
    if stream.tell() != len(data):
        raise ValueError(
            f"{path}: not a valid CIFAR-10 batch ({len(data) - stream.tell()} trailing bytes)"
        )
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a valid CIFAR-10 batch (a {type(obj).__name__}, not a dict)")  # noqa: TRY004
    obj = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    X, labels = obj.get("data"), obj.get("labels")
    if not isinstance(X, np.ndarray) or X.dtype != np.uint8 or X.ndim != 2 or X.shape[1] != 3072:
        desc = (
            f"{X.dtype} array of shape {X.shape}" if isinstance(X, np.ndarray) else type(X).__name__
        )
        raise ValueError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), got {desc}")
    if not isinstance(labels, (list, np.ndarray)) or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels
    ):
        raise ValueError(f"{path}: 'labels' must be a list of ints")
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"{path}: {X.shape[0]} images but {y.shape[0]} labels")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{path}: labels must be in 0..9, got range {y.min()}..{y.max()}")
    return X, y


def _cifar_batch_dir(root, names):
    for cand in (root / _CIFAR_DIR, root):
        if all((cand / n).is_file() for n in names):
            return cand
    return None


def _extract_cifar(archive, root):
    """Verify the archive, then extract its batch files into ``root/cifar-10-batches-py``.

    Only regular files named cifar-10-batches-py/<batch> are extracted, through
    tarfile's "data" filter, into a temporary directory first; an archive with
    an absolute or parent-relative member name is refused outright.
    """
    _verify_file(archive, _CIFAR_ARCHIVE)
    wanted = {f"{_CIFAR_DIR}/{n}" for n in _CIFAR_TRAIN + _CIFAR_TEST}
    target = root / _CIFAR_DIR
    tmp = Path(tempfile.mkdtemp(prefix=".cifar10-extract-", dir=root))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = tar.getmembers()
                for m in members:
                    parts = Path(m.name).parts
                    if (
                        m.name.startswith(("/", "\\"))
                        or Path(m.name).is_absolute()
                        or ".." in parts
                    ):
                        raise ValueError(f"{archive}: refusing unsafe member path {m.name!r}")
                chosen = [m for m in members if m.name in wanted]
                for m in chosen:
                    if not m.isfile():
                        raise ValueError(f"{archive}: member {m.name!r} is not a regular file")
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, members=chosen, filter="data")
                else:  # pragma: no cover  (Python without extraction filters: names and types checked above)
                    tar.extractall(tmp, members=chosen)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise _bad_file(f"{archive}: corrupt or truncated archive ({exc})", archive,
                            "cifar10") from None
        target.mkdir(exist_ok=True)
        for m in chosen:
            os.replace(tmp / m.name, target / Path(m.name).name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def cifar10(root=None, split="train", download=True):
    """CIFAR-10: ``(X, y)`` with X float32 (N, 3, 32, 32) in [0, 1], y int64 (class names in
    :data:`CIFAR10_CLASSES`).

    ``root`` holds ``cifar-10-batches-py/`` (or the batch files themselves) or
    ``cifar-10-python.tar.gz``; None means :func:`default_root` ("cifar10").
    ``split`` is "train" (50,000 images) or "test" (10,000). The archive is
    verified before it is extracted, and each batch is verified before it is
    unpickled (with a restricted unpickler).
    """
    split = _check_split(split)
    download = _check_download(download)
    root = _resolve_root(root, "cifar10")
    names = _CIFAR_TRAIN if split == "train" else _CIFAR_TEST
    batch_dir = _cifar_batch_dir(root, names)
    if batch_dir is None:
        archive = root / _CIFAR_ARCHIVE
        if not archive.is_file():
            if not download:
                raise DatasetNotFoundError(
                    f"CIFAR-10 {split} split not found: {root} has neither {_CIFAR_DIR}/ with "
                    f"{', '.join(names)} nor {_CIFAR_ARCHIVE}.",
                    [("put_files", {"files": "the archive (or the extracted folder)", "folder": str(root)}),
                     ("root", {}), ("download", {"dataset": "cifar10"})],
                )
            with _removing_new_folders(root):
                _fetch(
                    [base + _CIFAR_ARCHIVE for base in MIRRORS["cifar10"]],
                    archive,
                    lambda f: _verify_file(archive, _CIFAR_ARCHIVE, None, src=f),
                    "cifar10",
                    split,
                    [_CIFAR_ARCHIVE],
                )
        batch_dir = _extract_cifar(archive, root)
        absent = [n for n in names if not (batch_dir / n).is_file()]
        if absent:
            raise ValueError(f"{archive}: the archive lacks {', '.join(absent)}")
    Xs, ys = [], []
    for name in names:
        path = batch_dir / name
        _verify_file(path, name)  # never unpickle an unverified file
        X, y = _unpickle_batch(path)
        Xs.append(X)
        ys.append(y)
    data = np.concatenate(Xs) if len(Xs) > 1 else Xs[0]
    n = data.shape[0]
    return _unit_float(data, (n, 3, 32, 32)), np.concatenate(ys)

