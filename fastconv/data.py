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

This module is plain Python and NumPy: it never calls the native kernels.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import math
import os
import pickle
import shutil
import struct
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from ._args import check_array, make_rng, pair

__all__ = [
    "CHECKSUMS",
    "CIFAR10_CLASSES",
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "MIRRORS",
    "MNIST_CLASSES",
    "SHAPES_CLASSES",
    "Augment",
    "DownloadError",
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


class DownloadError(ConnectionError):
    """A dataset file could not be downloaded (no network, or no mirror served a good copy)."""


# ---------------------------------------------------------------------------
# Published digests
# ---------------------------------------------------------------------------
#
# One entry per file. A digest is an md5 (32 hex digits) or a sha256 (64 hex
# digits). For the IDX datasets, "gz" lists digests of the official gzip file
# and "raw" digests of its decompressed content: a file is accepted if either
# matches. For CIFAR-10, "file" lists digests of the file itself.
#
# Sources, each digest checked against the named public source (no digest
# here is a guess):
# - md5 of the MNIST and Fashion-MNIST .gz files, of cifar-10-python.tar.gz
#   and of each CIFAR-10 batch file: the resource tables of torchvision's
#   MNIST, FashionMNIST and CIFAR10 datasets (pytorch/vision).
# - sha256 of the MNIST and Fashion-MNIST .gz files: TensorFlow Datasets'
#   url_checksums (mnist.txt, fashion_mnist.txt).
# - sha256 of cifar-10-python.tar.gz: the file_hash in Keras' cifar10 loader.
# - sha256 of the decompressed MNIST IDX files: the README of the shared test
#   data (test split; also recomputed here from those files) and several
#   independent public loaders that pin the uncompressed files (train split).
# No published sha256 of the decompressed Fashion-MNIST files was found, so
# Fashion-MNIST is accepted by its gzip digests only.
#
# The table is a module-level dict so that tests (and users with a private
# mirror) can extend it.
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte": {
            "gz": (
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            ),
            "raw": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",),
        },
        "train-labels-idx1-ubyte": {
            "gz": (
                "d53e105ee54ea40749a09fcbcd1e9432",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            ),
            "raw": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",),
        },
        "t10k-images-idx3-ubyte": {
            "gz": (
                "9fb629c4189551a2d022fa330f9573f3",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            "raw": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",),
        },
        "t10k-labels-idx1-ubyte": {
            "gz": (
                "ec29112dd5afa0611ce80d1b7f02629c",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
            "raw": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",),
        },
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": {
            "gz": (
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            ),
            "raw": (),
        },
        "train-labels-idx1-ubyte": {
            "gz": (
                "25c81989df183df01b3e8a0aad5dffbe",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            ),
            "raw": (),
        },
        "t10k-images-idx3-ubyte": {
            "gz": (
                "bef4ecab320f06d8554ea6380940ec79",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            ),
            "raw": (),
        },
        "t10k-labels-idx1-ubyte": {
            "gz": (
                "bb300cfdad3c16e7a12a480ee83cd310",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            ),
            "raw": (),
        },
    },
    "cifar10": {
        "cifar-10-python.tar.gz": {
            "file": (
                "c58f30108f718f92721af3b95e74349a",
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            ),
        },
        "data_batch_1": {"file": ("c99cafc152244af753f735de768cd75f",)},
        "data_batch_2": {"file": ("d4bba439e000b95fd0a9bffe97cbabec",)},
        "data_batch_3": {"file": ("54ebc095f3ab1f0389bbae665268c751",)},
        "data_batch_4": {"file": ("634d18415352ddfa80567beed471001a",)},
        "data_batch_5": {"file": ("482c414d41f54cd18b22e5b47cb7c3cb",)},
        "test_batch": {"file": ("40351d587109b95175f43aff81a1287e",)},
    },
}

#: Base URLs tried in order for each dataset's files.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}

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

_DISPLAY = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = ("test_batch",)
_DOWNLOAD_TIMEOUT = 60.0


# ---------------------------------------------------------------------------
# Paths, splits, digests
# ---------------------------------------------------------------------------


def default_root(dataset):
    """The cache directory a loader uses when ``root`` is None.

    ``$FASTCONV_DATA/<dataset>`` when the environment variable FASTCONV_DATA is
    set, else ``$XDG_CACHE_HOME/fastconv/<dataset>`` (``~/.cache/fastconv/<dataset>``
    when XDG_CACHE_HOME is unset). ``dataset`` is "mnist", "fashion_mnist" or "cifar10".
    """
    if dataset not in _DISPLAY:
        raise ValueError(f"dataset must be one of {sorted(_DISPLAY)}, got {dataset!r}")
    base = os.environ.get("FASTCONV_DATA")
    if base:
        return Path(base).expanduser() / dataset
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "fastconv" / dataset


def _resolve_root(root, dataset):
    if root is None:
        return default_root(dataset)
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(
            f"root must be a path (str or os.PathLike) or None, got {type(root).__name__}"
        )
    return Path(root).expanduser()


def _check_split(split):
    if split not in ("train", "test"):
        raise ValueError(f'split must be "train" or "test", got {split!r}')
    return split


def _check_download(download):
    if not isinstance(download, (bool, np.bool_)):
        raise TypeError(f"download must be a bool, got {download!r}")
    return bool(download)


def _hashes(data):
    return {"md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}


def _file_hashes(path):
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
            sha.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def _matches(hashes, expected):
    for digest in expected:
        digest = digest.lower()
        if digest == (hashes["md5"] if len(digest) == 32 else hashes["sha256"]):
            return True
    return False


def _fmt(digests):
    return ", ".join(digests) if digests else "(none published)"


def _fix_hint(path, loader):
    if loader is None:  # a fresh download: the caller reports it
        return ""
    return (
        f"The file is truncated, corrupt or not the official one: delete {path} and call "
        f"fastconv.data.{loader}(..., download=True) to fetch a good copy, or replace it "
        "with a copy of the official file."
    )


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


# ---------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST)
# ---------------------------------------------------------------------------

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


def _idx_names(split):
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find_idx(root, name):
    """The uncompressed file if present, else the .gz; None if neither exists."""
    for cand in (root / name, root / (name + ".gz")):
        if cand.is_file():
            return cand
    return None


def _verified_idx_bytes(path, entry, loader):
    """Return the decompressed content of ``path`` once its digest matched ``entry``."""
    data = path.read_bytes()
    raw_expected = tuple(entry.get("raw", ()))
    if path.name.endswith(".gz"):
        gz_expected = tuple(entry.get("gz", ()))
        gz_hashes = _hashes(data)
        if _matches(gz_hashes, gz_expected):
            return _gunzip(data, path)
        content, reason = _try_gunzip(data)
        if content is None:
            raise ValueError(
                f"{path}: checksum mismatch: expected one of {_fmt(gz_expected)} for the gzip "
                f"file, got md5 {gz_hashes['md5']} / sha256 {gz_hashes['sha256']}; and it does "
                f"not decompress (corrupt or truncated gzip stream: {reason}). {_fix_hint(path, loader)}".rstrip()
            )
        raw_hashes = _hashes(content)
        if _matches(raw_hashes, raw_expected):
            return content
        raise ValueError(
            f"{path}: checksum mismatch: expected one of {_fmt(gz_expected)} for the gzip file "
            f"or one of {_fmt(raw_expected)} for its decompressed content, got md5 "
            f"{gz_hashes['md5']} / sha256 {gz_hashes['sha256']} (decompressed: sha256 "
            f"{raw_hashes['sha256']}). {_fix_hint(path, loader)}".rstrip()
        )
    raw_hashes = _hashes(data)
    if _matches(raw_hashes, raw_expected):
        return data
    extra = ""
    if not raw_expected:
        extra = f" No digest of the uncompressed file is published: use {path.name}.gz instead."
    raise ValueError(
        f"{path}: checksum mismatch: expected one of {_fmt(raw_expected)}, got sha256 "
        f"{raw_hashes['sha256']} (md5 {raw_hashes['md5']}).{extra} {_fix_hint(path, loader)}".rstrip()
    )


def _verify_idx_file(path, entry, loader):
    _parse_idx(_verified_idx_bytes(path, entry, loader), path)


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
            raise FileNotFoundError(
                f"{_DISPLAY[dataset]} {split} split not found: {root} has no "
                f"{' or '.join(gz)} (nor the uncompressed {' or '.join(missing)}). Put the files "
                f"in that directory (or pass root= a directory that has them), or call "
                f"fastconv.data.{dataset}(..., download=True) to download them."
            )
        for name in missing:
            entry = table[name]
            found[name] = _fetch(
                [base + name + ".gz" for base in MIRRORS[dataset]],
                root / (name + ".gz"),
                lambda p, entry=entry: _verify_idx_file(p, entry, None),
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
    X = np.empty((n, 1, h, w), dtype=np.float32)
    np.divide(images.reshape(n, 1, h, w), np.float32(255.0), out=X, casting="unsafe")
    return X, labels.astype(np.int64)


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


# ---------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------


def _fetch(urls, dest, verify, dataset, split, expected_files):
    """Download the first good copy among ``urls`` to ``dest``.

    Each attempt goes to a temporary file in ``dest``'s directory, is checked
    by ``verify`` (which raises ValueError on a bad copy), and only then is
    renamed into place, so ``dest`` is either absent or verified.
    """
    folder = dest.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot create the {_DISPLAY[dataset]} directory {folder} ({exc}); pass root= a "
            "writable directory, or set FASTCONV_DATA"
        ) from None
    errors = []
    for url in urls:
        # ".part-XXXX-<name>": recognisably partial, and ends like the real file (".gz").
        fd, tmp = tempfile.mkstemp(prefix=".part-", suffix=f"-{dest.name}", dir=folder)
        try:
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as resp,
            ):
                shutil.copyfileobj(resp, out, 1 << 20)
            verify(Path(tmp))
            os.replace(tmp, dest)
            return dest
        except ValueError as exc:
            errors.append(f"{url} served a file that failed verification ({exc})")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DownloadError(
        f"could not download {_DISPLAY[dataset]} ({split} split) into {folder}: "
        + "; ".join(errors)
        + f". Without network access, put {' and '.join(expected_files)} into {folder} "
        f"(downloaded elsewhere from {' or '.join(MIRRORS[dataset])}), or pass root= a "
        "directory that has them."
    )


# ---------------------------------------------------------------------------
# CIFAR-10 (python batches)
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


def _verify_file(path, name, loader="cifar10"):
    expected = tuple(CHECKSUMS["cifar10"][name].get("file", ()))
    got = _file_hashes(path)
    if not _matches(got, expected):
        raise ValueError(
            f"{path}: checksum mismatch: expected one of {_fmt(expected)}, got md5 {got['md5']} "
            f"/ sha256 {got['sha256']}. {_fix_hint(path, loader)}".rstrip()
        )


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
            raise ValueError(
                f"{archive}: corrupt or truncated archive ({exc}). {_fix_hint(archive, 'cifar10')}"
            ) from None
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
                raise FileNotFoundError(
                    f"CIFAR-10 {split} split not found: {root} has neither {_CIFAR_DIR}/ with "
                    f"{', '.join(names)} nor {_CIFAR_ARCHIVE}. Put the archive (or the extracted "
                    "folder) there, or pass root= a directory that has it, or call "
                    "fastconv.data.cifar10(..., download=True) to download it."
                )
            _fetch(
                [base + _CIFAR_ARCHIVE for base in MIRRORS["cifar10"]],
                archive,
                lambda p: _verify_file(p, _CIFAR_ARCHIVE, None),
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
    X = np.empty((n, 3, 32, 32), dtype=np.float32)
    np.divide(data.reshape(n, 3, 32, 32), np.float32(255.0), out=X, casting="unsafe")
    return X, np.concatenate(ys)


# ---------------------------------------------------------------------------
# Built-in procedural data set: shapes
# ---------------------------------------------------------------------------

SHAPES_CLASSES = (
    "horizontal line",
    "vertical line",
    "diagonal line",
    "corner",
    "circle",
    "rectangle",
    "plus",
    "cross",
    "triangle",
    "arc",
)


def _seg_dist(px, py, ax, ay, bx, by):
    """Distance from pixel centres (px, py) (shape (1, S, S)) to segments a-b (each (B, 1, 1))."""
    dx, dy = bx - ax, by - ay
    len2 = np.maximum(dx * dx + dy * dy, 1e-12)
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / len2, 0.0, 1.0)
    ex, ey = px - (ax + t * dx), py - (ay + t * dy)
    return np.sqrt(ex * ex + ey * ey)


def _polyline_dist(px, py, cx, cy, pts, angle):
    """Distance to a polyline given in local coords ``pts`` (B, K, 2), rotated by ``angle`` about (cx, cy)."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = cx[:, None] + c * pts[..., 0] - s * pts[..., 1]
    y = cy[:, None] + s * pts[..., 0] + c * pts[..., 1]
    d = None
    for k in range(pts.shape[1] - 1):
        dk = _seg_dist(
            px,
            py,
            *(v[:, k, None, None] for v in (x, y)),
            *(v[:, k + 1, None, None] for v in (x, y)),
        )
        d = dk if d is None else np.minimum(d, dk)
    return d


def _segments_dist(px, py, cx, cy, segs, angle):
    """Distance to independent segments ``segs`` (B, K, 2, 2) in local coords."""
    d = None
    for k in range(segs.shape[1]):
        dk = _polyline_dist(px, py, cx, cy, segs[:, k], angle)
        d = dk if d is None else np.minimum(d, dk)
    return d


def _draw_class(label, B, size, rng, px, py):
    """Distance field (B, size, size) of ``B`` random figures of class ``label``."""
    S = float(size)
    u = rng.uniform
    jitter = np.deg2rad(u(-10.0, 10.0, B))
    # Overall extent of each figure, then a centre that keeps it inside the image.
    if label in (0, 1, 2):
        ext = u(0.45, 0.85, B) * S
    elif label == 9:
        ext = u(0.5, 0.8, B) * S
    else:
        ext = u(0.4, 0.75, B) * S
    half = ext / 2.0
    margin = 1.5 + half * (1.42 if label in (2, 3, 7, 8) else 1.0)
    margin = np.minimum(margin, S / 2.0 - 0.5)
    cx = u(0.0, 1.0, B) * (S - 1 - 2 * margin) + margin
    cy = u(0.0, 1.0, B) * (S - 1 - 2 * margin) + margin
    zeros = np.zeros(B)
    if label in (0, 1, 2):  # a straight line through the centre
        base = {0: 0.0, 1: np.pi / 2, 2: np.pi / 4}[label]
        angle = base + jitter
        if label == 2:
            angle = angle + (rng.random(B) < 0.5) * (np.pi / 2)
        pts = np.stack([np.stack([-half, zeros], 1), np.stack([half, zeros], 1)], 1)
        return _polyline_dist(px, py, cx, cy, pts, angle)
    if label == 3:  # corner: two arms at a right angle, four orientations
        a1 = half * u(0.7, 1.0, B)
        a2 = half * u(0.7, 1.0, B)
        pts = np.stack([np.stack([a1, -a2], 1), np.stack([-a1, -a2], 1), np.stack([-a1, a2], 1)], 1)
        angle = rng.integers(0, 4, B) * (np.pi / 2) + jitter
        return _polyline_dist(px, py, cx, cy, pts, angle)
    if label == 4:  # circle (ring)
        r = half
        return np.abs(np.hypot(px - cx[:, None, None], py - cy[:, None, None]) - r[:, None, None])
    if label == 5:  # rectangle outline, either orientation
        w = half
        h = half * u(0.45, 0.8, B)
        swap = rng.random(B) < 0.5
        w, h = np.where(swap, h, w), np.where(swap, w, h)
        pts = np.stack(
            [
                np.stack([-w, -h], 1),
                np.stack([w, -h], 1),
                np.stack([w, h], 1),
                np.stack([-w, h], 1),
                np.stack([-w, -h], 1),
            ],
            1,
        )
        return _polyline_dist(px, py, cx, cy, pts, jitter)
    if label in (6, 7):  # plus / diagonal cross: two crossing strokes
        l1 = half * u(0.8, 1.0, B)
        l2 = half * u(0.8, 1.0, B)
        segs = np.stack(
            [
                np.stack([np.stack([-l1, zeros], 1), np.stack([l1, zeros], 1)], 1),
                np.stack([np.stack([zeros, -l2], 1), np.stack([zeros, l2], 1)], 1),
            ],
            1,
        )
        angle = jitter + (np.pi / 4 if label == 7 else 0.0)
        return _segments_dist(px, py, cx, cy, segs, angle)
    if label == 8:  # triangle outline, any rotation
        phi = u(0.0, 2 * np.pi, B)[:, None] + np.array(
            [0.0, 2 * np.pi / 3, 4 * np.pi / 3, 2 * np.pi]
        )
        rad = half[:, None] * u(0.85, 1.0, (B, 4))
        rad[:, 3] = rad[:, 0]
        pts = np.stack([rad * np.cos(phi), rad * np.sin(phi)], -1)
        return _polyline_dist(px, py, cx, cy, pts, zeros)
    # label 9: arc of a circle spanning 150 to 250 degrees
    r = half[:, None, None]
    start = u(0.0, 2 * np.pi, B)[:, None, None]
    span = np.deg2rad(u(150.0, 250.0, B))[:, None, None]
    ccx, ccy = cx[:, None, None], cy[:, None, None]
    theta = np.mod(np.arctan2(py - ccy, px - ccx) - start, 2 * np.pi)
    on_arc = np.abs(np.hypot(px - ccx, py - ccy) - r)
    e0 = np.hypot(px - (ccx + r * np.cos(start)), py - (ccy + r * np.sin(start)))
    e1 = np.hypot(px - (ccx + r * np.cos(start + span)), py - (ccy + r * np.sin(start + span)))
    return np.where(theta <= span, on_arc, np.minimum(e0, e1))


def _shapes(n, rng, size, noise):
    n = int(n)
    counts = [n // 10 + (1 if c < n % 10 else 0) for c in range(10)]
    X = np.empty((n, 1, size, size), dtype=np.float32)
    y = np.empty(n, dtype=np.int64)
    coords = np.arange(size, dtype=np.float64)
    px, py = coords[None, None, :], coords[None, :, None]
    start = 0
    for label, B in enumerate(counts):
        if B == 0:
            continue
        d = _draw_class(label, B, size, rng, px, py)
        thick = rng.uniform(0.9, 2.4, B)[:, None, None] * (size / 28.0)
        bright = rng.uniform(0.6, 1.0, B)[:, None, None]
        # Anti-aliased stroke: full inside half the thickness, a one-pixel linear ramp outside.
        img = np.clip(thick / 2.0 + 0.5 - d, 0.0, 1.0) * bright
        X[start : start + B, 0] = img
        y[start : start + B] = label
        start += B
    if noise > 0:
        X += rng.normal(0.0, noise, X.shape).astype(np.float32)
        np.clip(X, 0.0, 1.0, out=X)
    order = rng.permutation(n)
    return np.ascontiguousarray(X[order]), y[order]


def _check_shapes_args(n, size, noise):
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) or size < 12:
        raise ValueError(f"size must be an int >= 12, got {size!r}")
    if not isinstance(noise, (int, float, np.floating, np.integer)) or not (
        0.0 <= noise < math.inf
    ):
        raise ValueError(f"noise must be a finite float >= 0, got {noise!r}")
    return int(n), int(size), float(noise)


def shapes(n=6000, seed=0, size=28, noise=0.1):
    """A built-in 10-class image set of line figures, generated on the fly (no download).

    Returns ``(X, y)``: X float32 (n, 1, size, size) in [0, 1], y int64 in
    0..9 (names in :data:`SHAPES_CLASSES`: horizontal, vertical and diagonal
    lines, corner, circle, rectangle, plus, diagonal cross, triangle, arc).
    Each figure has a random position, extent, small rotation, stroke width
    and brightness, drawn anti-aliased with additive Gaussian pixel noise of
    standard deviation ``noise``. Classes are balanced (they differ by at
    most one image) and the order is shuffled. The same ``seed`` (an int, a
    SeedSequence or a Generator's seed material, as for
    ``numpy.random.default_rng``) gives the same images.
    """
    n, size, noise = _check_shapes_args(n, size, noise)
    return _shapes(n, np.random.default_rng(seed), size, noise)


def shapes_split(n_train=6000, n_test=1000, seed=0, size=28, noise=0.1):
    """``((X_train, y_train), (X_test, y_test))`` from :func:`shapes`, drawn from two
    independent random streams spawned from ``seed`` (so the two sets never share images)."""
    n_train, size, noise = _check_shapes_args(n_train, size, noise)
    n_test, _, _ = _check_shapes_args(n_test, size, noise)
    ss_train, ss_test = np.random.SeedSequence(seed).spawn(2)
    train = _shapes(n_train, np.random.default_rng(ss_train), size, noise)
    test = _shapes(n_test, np.random.default_rng(ss_test), size, noise)
    return train, test


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


# ---------------------------------------------------------------------------
# Augmentation
# ---------------------------------------------------------------------------


def _check_prob(p, name):
    if (
        isinstance(p, bool)
        or not isinstance(p, (int, float, np.floating, np.integer))
        or not 0.0 <= p <= 1.0
    ):
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def random_flip(X, rng=None, horizontal=True, vertical=False, p=0.5):
    """Mirror each image left-right (``horizontal``) and/or top-bottom (``vertical``),
    each independently with probability ``p``. ``X`` (N, C, H, W) float; returns a new array."""
    X = check_array(X, "X", ndim=4)
    p = _check_prob(p, "p")
    rng = make_rng(rng, "rng")
    out = np.array(X, copy=True, order="C")
    n = X.shape[0]
    if horizontal:
        m = rng.random(n) < p
        out[m] = out[m][..., ::-1]
    if vertical:
        m = rng.random(n) < p
        out[m] = out[m][..., ::-1, :]
    return out


def _gather_windows(X, oy, ox, out_h, out_w, pad_h, pad_w):
    """out[i] = zero-padded X[i] window of size (out_h, out_w) at offset (oy[i], ox[i])."""
    N, C, H, W = X.shape
    padded = np.zeros((N, C, H + 2 * pad_h, W + 2 * pad_w), dtype=X.dtype)
    padded[:, :, pad_h : pad_h + H, pad_w : pad_w + W] = X
    rows = oy[:, None] + np.arange(out_h)
    cols = ox[:, None] + np.arange(out_w)
    return padded[
        np.arange(N)[:, None, None, None],
        np.arange(C)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


def random_shift(X, rng=None, max_shift=2):
    """Translate each image by a random whole number of pixels in [-max_shift, max_shift]
    (int or (dy, dx)) along each axis, filling the uncovered border with zeros."""
    X = check_array(X, "X", ndim=4)
    sy, sx = pair(max_shift, "max_shift", minimum=0)
    rng = make_rng(rng, "rng")
    N, _, H, W = X.shape
    oy = rng.integers(0, 2 * sy + 1, N)
    ox = rng.integers(0, 2 * sx + 1, N)
    return _gather_windows(X, oy, ox, H, W, sy, sx)


def random_crop(X, rng=None, size=None, padding=0):
    """Cut a random ``size`` (int or (h, w)) window out of each image after zero-padding it
    by ``padding`` (int or pair) on every side. ``size`` None keeps the input size."""
    X = check_array(X, "X", ndim=4)
    N, _, H, W = X.shape
    ph, pw = pair(padding, "padding", minimum=0)
    ch, cw = (H, W) if size is None else pair(size, "size")
    if ch > H + 2 * ph or cw > W + 2 * pw:
        raise ValueError(
            f"size {(ch, cw)} is larger than the padded image {(H + 2 * ph, W + 2 * pw)}"
        )
    rng = make_rng(rng, "rng")
    oy = rng.integers(0, H + 2 * ph - ch + 1, N)
    ox = rng.integers(0, W + 2 * pw - cw + 1, N)
    return _gather_windows(X, oy, ox, ch, cw, ph, pw)


def add_noise(X, rng=None, std=0.1, clip=None):
    """Add Gaussian noise of standard deviation ``std`` (same dtype as ``X``); ``clip``
    an optional (low, high) range to clip the result to."""
    X = check_array(X, "X")
    if (
        isinstance(std, bool)
        or not isinstance(std, (int, float, np.floating, np.integer))
        or not (0.0 <= std < math.inf)
    ):
        raise ValueError(f"std must be a finite float >= 0, got {std!r}")
    rng = make_rng(rng, "rng")
    out = X + rng.standard_normal(X.shape, dtype=X.dtype) * X.dtype.type(std)
    if clip is not None:
        lo, hi = clip
        np.clip(out, lo, hi, out=out)
    return out


class Augment:
    """A chain of augmentations applied as ``aug(X, rng) -> new X``.

    Keyword recipe, applied in this order when enabled: ``hflip`` / ``vflip``
    (each with probability ``p``), ``shift`` (max pixels), ``crop`` (window
    size, after ``padding``), ``noise`` (std, clipped to ``clip``). Further
    ``steps`` (callables ``f(X, rng) -> X``, e.g. other Augment objects) run
    after the recipe, in order::

        aug = Augment(hflip=True, shift=2, noise=0.05)
        for xb, yb in batches:
            xb = aug(xb, rng)
    """

    def __init__(
        self,
        *steps,
        hflip=False,
        vflip=False,
        p=0.5,
        shift=0,
        crop=None,
        padding=0,
        noise=0.0,
        clip=(0.0, 1.0),
    ):
        for i, step in enumerate(steps):
            if not callable(step):
                raise TypeError(
                    f"steps[{i}] must be callable as f(X, rng), got {type(step).__name__}"
                )
        self.p = _check_prob(p, "p")
        self.hflip, self.vflip = bool(hflip), bool(vflip)
        self.shift = pair(shift, "shift", minimum=0)
        self.crop = None if crop is None else pair(crop, "crop")
        self.padding = pair(padding, "padding", minimum=0)
        if (
            isinstance(noise, bool)
            or not isinstance(noise, (int, float, np.floating, np.integer))
            or not (0.0 <= noise < math.inf)
        ):
            raise ValueError(f"noise must be a finite float >= 0, got {noise!r}")
        self.noise = float(noise)
        self.clip = clip
        self.steps = tuple(steps)

    def __call__(self, X, rng=None):
        X = check_array(X, "X", ndim=4)
        rng = make_rng(rng, "rng")
        out = X
        if self.hflip or self.vflip:
            out = random_flip(out, rng, horizontal=self.hflip, vertical=self.vflip, p=self.p)
        if self.shift != (0, 0):
            out = random_shift(out, rng, self.shift)
        if self.crop is not None or self.padding != (0, 0):
            out = random_crop(out, rng, self.crop, self.padding)
        if self.noise > 0:
            out = add_noise(out, rng, self.noise, clip=self.clip)
        for step in self.steps:
            out = step(out, rng)
        if out is X:
            out = X.copy()
        return out

    def __repr__(self):
        parts = []
        if self.hflip:
            parts.append("hflip=True")
        if self.vflip:
            parts.append("vflip=True")
        if self.hflip or self.vflip:
            parts.append(f"p={self.p}")
        if self.shift != (0, 0):
            parts.append(f"shift={self.shift}")
        if self.crop is not None:
            parts.append(f"crop={self.crop}")
        if self.padding != (0, 0):
            parts.append(f"padding={self.padding}")
        if self.noise:
            parts.append(f"noise={self.noise}, clip={self.clip}")
        parts += [repr(s) for s in self.steps]
        return f"Augment({', '.join(parts)})"
