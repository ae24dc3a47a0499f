"""MNIST and Fashion-MNIST: strict IDX parsing and the two verified loaders.

``mnist`` and ``fashion_mnist`` read the four IDX files of a split (gzip or
uncompressed) from ``root``, download the missing ones when asked, and check
each against :data:`~fastconv.data.CHECKSUMS` before parsing it. A gzip file
is accepted when either its own bytes or its decompressed content match a
known digest, so a recompressed copy of the official data is fine.
:func:`read_idx` reads any IDX file without a digest check.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from .download import (
    _DISPLAY,
    CHECKSUMS,
    MIRRORS,
    DatasetNotFoundError,
    _bad_file,
    _check_download,
    _check_split,
    _fetch,
    _fmt,
    _hashes,
    _matches,
    _removing_new_folders,
    _resolve_root,
    _unit_float,
)

MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


# ---------------------------------------------------------------------------
# gzip and IDX files
# ---------------------------------------------------------------------------


def _try_gunzip(data):
    """``(content, None)``, or ``(None, reason)`` when the gzip stream is truncated or corrupt."""
    try:
        return gzip.decompress(data), None
    except (EOFError, OSError, zlib.error) as exc:
        return None, str(exc) or type(exc).__name__


def _gunzip(data, path):
    """Decompress a whole gzip file; a truncated or corrupt stream is a ValueError."""
    content, reason = _try_gunzip(data)
    if content is None:
        raise ValueError(f"{path}: corrupt or truncated gzip stream ({reason})")
    return content


# IDX type codes -> big-endian dtypes
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _parse_idx(content, source):
    """Parse IDX bytes strictly; returns a read-only big-endian view of ``content``.

    The magic number's first two bytes must be zero, the third a known type
    code and the fourth the number of dimensions; the payload must hold
    exactly prod(dims) items: a short (truncated) or long payload is an error.
    """
    n = len(content)
    if n < 4:
        raise ValueError(
            f"{source}: not an IDX file: {n} bytes, too short for the 4-byte magic number"
        )
    if content[0] != 0 or content[1] != 0:
        raise ValueError(
            f"{source}: not an IDX file: bad magic number 0x{content[:4].hex()} "
            "(the first two bytes must be zero)"
        )
    code, ndim = content[2], content[3]
    if code not in _IDX_TYPES:
        raise ValueError(
            f"{source}: bad IDX magic number 0x{content[:4].hex()}: unknown type code 0x{code:02x} "
            f"(expected one of {', '.join(f'0x{c:02x}' for c in _IDX_TYPES)})"
        )
    if ndim == 0:
        raise ValueError(f"{source}: bad IDX magic number 0x{content[:4].hex()}: 0 dimensions")
    header = 4 + 4 * ndim
    if n < header:
        raise ValueError(f"{source}: truncated IDX header: {n} bytes, the header needs {header}")
    dims = struct.unpack(f">{ndim}I", content[4:header])
    dtype = _IDX_TYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    got = n - header
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise ValueError(
            f"{source}: IDX file {what}: dims {dims} of {dtype.name} need {expected} payload bytes, "
            f"found {got}"
        )
    return np.frombuffer(content, dtype=dtype, offset=header).reshape(dims)


def read_idx(path):
    """Read one IDX file (gzip-compressed if its name ends in .gz) into a NumPy array.

    The file is parsed strictly (magic number, type code, dimensions against
    payload length) but not checked against any digest: use the dataset
    loaders for verified reads. Returns a native-byte-order array.
    """
    path = Path(path)
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = _gunzip(data, path)
    arr = _parse_idx(data, path)
    return arr.astype(arr.dtype.newbyteorder("="))


# ---------------------------------------------------------------------------
# The loaders
# ---------------------------------------------------------------------------


def _idx_names(split):
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find_idx(root, name):
    """The uncompressed file if present, else the .gz; None if neither exists."""
    for cand in (root / name, root / (name + ".gz")):
        if cand.is_file():
            return cand
    return None


def _verified_idx_bytes(path, entry, loader, data=None):
    """Return the decompressed content of ``path`` once its digest matched ``entry``.

    ``data``: the file's bytes when already read (a download, not yet renamed
    to ``path``; ``path`` still decides gzip or not and names it in errors).
    """
    if data is None:
        data = path.read_bytes()
    raw_expected = tuple(entry.get("raw", ()))
    if path.name.endswith(".gz"):
        gz_expected = tuple(entry.get("gz", ()))
        gz_hashes = _hashes(data)
        if _matches(gz_hashes, gz_expected):
            return _gunzip(data, path)
        content, reason = _try_gunzip(data)
        if content is None:
            raise _bad_file(
                f"{path}: checksum mismatch: expected one of {_fmt(gz_expected)} for the gzip "
                f"file, got md5 {gz_hashes['md5']} / sha256 {gz_hashes['sha256']}; and it does "
                f"not decompress (corrupt or truncated gzip stream: {reason})", path, loader)
        raw_hashes = _hashes(content)
        if _matches(raw_hashes, raw_expected):
            return content
        raise _bad_file(
            f"{path}: checksum mismatch: expected one of {_fmt(gz_expected)} for the gzip file "
            f"or one of {_fmt(raw_expected)} for its decompressed content, got md5 "
            f"{gz_hashes['md5']} / sha256 {gz_hashes['sha256']} (decompressed: sha256 "
            f"{raw_hashes['sha256']})", path, loader)
    raw_hashes = _hashes(data)
    if _matches(raw_hashes, raw_expected):
        return data
    extra = ""
    if not raw_expected:
        extra = f". No digest of the uncompressed file is published: use {path.name}.gz instead"
    raise _bad_file(
        f"{path}: checksum mismatch: expected one of {_fmt(raw_expected)}, got sha256 "
        f"{raw_hashes['sha256']} (md5 {raw_hashes['md5']}){extra}", path, loader)


def _verify_idx_download(f, dest, entry):
    """The check :func:`_fetch` runs on a download of ``dest`` (open as ``f``): digest, then IDX."""
    _parse_idx(_verified_idx_bytes(dest, entry, None, f.read()), dest)


def _load_idx_dataset(dataset, root, split, download):
    split = _check_split(split)
    download = _check_download(download)
    root = _resolve_root(root, dataset)
    table = CHECKSUMS[dataset]
    names = _idx_names(split)
    found = {name: _find_idx(root, name) for name in names}
    missing = [name for name in names if found[name] is None]
    if missing:
        gz = [name + ".gz" for name in missing]
        if not download:
            raise DatasetNotFoundError(
                f"{_DISPLAY[dataset]} {split} split not found: {root} has no "
                f"{' or '.join(gz)} (nor the uncompressed {' or '.join(missing)}).",
                [("put_files", {"files": "the files", "folder": str(root)}), ("root", {}),
                 ("download", {"dataset": dataset})],
            )
        with _removing_new_folders(root):
            for name in missing:
                dest = root / (name + ".gz")
                found[name] = _fetch(
                    [base + name + ".gz" for base in MIRRORS[dataset]],
                    dest,
                    lambda f, dest=dest, entry=table[name]: _verify_idx_download(f, dest, entry),
                    dataset,
                    split,
                    gz,
                )
    img_path, lbl_path = found[names[0]], found[names[1]]
    images = _parse_idx(_verified_idx_bytes(img_path, table[names[0]], dataset), img_path)
    labels = _parse_idx(_verified_idx_bytes(lbl_path, table[names[1]], dataset), lbl_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{img_path}: expected a 3-d unsigned-byte IDX file (magic 0x00000803), got "
            f"{images.ndim}-d {images.dtype.name}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(
            f"{lbl_path}: expected a 1-d unsigned-byte IDX file (magic 0x00000801), got "
            f"{labels.ndim}-d {labels.dtype.name}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{img_path} holds {images.shape[0]} images but {lbl_path} holds "
            f"{labels.shape[0]} labels: the files do not belong together"
        )
    if labels.size and int(labels.max()) > 9:
        raise ValueError(f"{lbl_path}: label {int(labels.max())} is out of range 0..9")
    n, h, w = images.shape
    return _unit_float(images, (n, 1, h, w)), labels.astype(np.int64)


def mnist(root=None, split="train", download=True):
    """The MNIST handwritten digits: ``(X, y)`` with X float32 (N, 1, 28, 28) in [0, 1], y int64.

    ``root`` holds ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (gzip or
    uncompressed); None means :func:`default_root` ("mnist"). ``split`` is
    "train" (60,000 images) or "test" (10,000). Missing files are downloaded
    (``download=True``) or a FileNotFoundError names the directory and files.
    """
    return _load_idx_dataset("mnist", root, split, download)


def fashion_mnist(root=None, split="train", download=True):
    """Zalando's Fashion-MNIST: same layout, shapes and split sizes as :func:`mnist`.

    Class names in :data:`FASHION_MNIST_CLASSES`. Files are accepted as the
    official ``.gz`` files (no digest of the uncompressed files is published).
    """
    return _load_idx_dataset("fashion_mnist", root, split, download)

