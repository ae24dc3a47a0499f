"""Dataset files: published digests, the cache folder, checksum checks and downloads.

What the file-backed loaders (:mod:`fastconv.data.mnist`, :mod:`fastconv.data.cifar`)
share: the digest table :data:`CHECKSUMS` and the mirror list :data:`MIRRORS`,
the cache directory (:func:`default_root`), the checks of the ``root``,
``split`` and ``download`` arguments, md5/sha256 matching, the scaling of
uint8 pixels to float32, and :func:`_fetch`, which downloads a file and
places it (through :func:`fastconv._fileio.atomic_write`) only once it has
been verified.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.request
from pathlib import Path

import numpy as np

from .._fileio import atomic_write

# ---------------------------------------------------------------------------
# Errors: what went wrong, and what to do about it, kept apart
# ---------------------------------------------------------------------------
#
# A data error's message is its ``problem`` followed by its ``remedies`` worded for
# the Python API (:data:`REMEDIES`). Each remedy is a (key, facts) pair, so a front
# end with other words for the same fixes (the ``fastconv`` command names its
# options) rewrites the advice from ``exc.problem`` and ``exc.remedies``.

#: remedy key -> how the Python API words it (``str.format`` with the remedy's facts).
REMEDIES = {
    "put_files": "put {files} in {folder}",
    "root": "pass root= a directory that has them",
    "download": "call fastconv.data.{dataset}(..., download=True) to download them",
    "writable_root": "pass root= a writable directory, or set FASTCONV_DATA",
    "fetch_elsewhere": "without network access, put {files} into {folder} (downloaded "
                       "elsewhere from {mirrors})",
    "replace_file": "delete {path} and call fastconv.data.{dataset}(..., download=True) to "
                    "fetch a good copy, or replace it with a copy of the official file",
}


def advice(remedies, wording=None):
    """The remedies as one sentence: each worded by ``wording`` (a dict like
    :data:`REMEDIES`, whose entries win) and joined with "or"."""
    words = dict(REMEDIES, **(wording or {}))
    parts = [words[key].format(**facts) for key, facts in remedies]
    if not parts:
        return ""
    text = ", or ".join(parts)
    return text[0].upper() + text[1:] + "."


class _Advised:
    """Mixin of the data errors: ``problem`` (str) and ``remedies`` (a tuple of
    (key, facts dict) pairs); the message is the problem and the API's advice."""

    def __init__(self, problem, remedies=()):
        self.problem = problem
        self.remedies = tuple((key, dict(facts)) for key, facts in remedies)
        super().__init__(f"{problem} {advice(self.remedies)}".strip())


class DownloadError(_Advised, ConnectionError):
    """A dataset file could not be downloaded (no network, or no mirror served a good copy)."""


class DatasetNotFoundError(_Advised, FileNotFoundError):
    """A dataset's files are not in its folder and downloading was not allowed."""


class DataFileError(_Advised, ValueError):
    """A dataset file is truncated, corrupt or not the official one."""


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

_DISPLAY = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
_DOWNLOAD_TIMEOUT = 60.0


# ---------------------------------------------------------------------------
# Loader arguments, digests
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


def _file_hashes(src):
    """md5 and sha256 of a file read in 1 MiB chunks: ``src`` is a path or a binary file
    object open for reading (read from its current position to the end)."""
    if isinstance(src, (str, os.PathLike)):
        with open(src, "rb") as f:
            return _file_hashes(f)
    md5, sha = hashlib.md5(), hashlib.sha256()
    for chunk in iter(lambda: src.read(1 << 20), b""):
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


def _bad_file(problem, path, loader):
    """The error for a bad dataset file at ``path``: a :class:`DataFileError` advising to
    replace it, or for a fresh download (``loader`` None, the caller reports it) a plain
    ValueError."""
    if loader is None:
        return ValueError(problem)
    return DataFileError(
        f"{problem}. The file is truncated, corrupt or not the official one.",
        [("replace_file", {"path": str(path), "dataset": loader})],
    )


def _verify_file_digest(src, path, expected, loader):
    """Raise a ValueError naming ``path`` unless the file ``src`` (``path`` itself, or the
    same content as an open binary file) matches one of the digests ``expected``.
    ``loader``: the loader whose name the fix hint gives (None: a fresh download)."""
    got = _file_hashes(src)
    if not _matches(got, expected):
        raise _bad_file(
            f"{path}: checksum mismatch: expected one of {_fmt(expected)}, got md5 {got['md5']} "
            f"/ sha256 {got['sha256']}", path, loader)


class _removing_new_folders:  # noqa: N801  (used as a function: ``with _removing_new_folders(root):``)
    """On an error in the ``with`` block, remove the folders up to ``folder`` that did not
    exist when the block started and are empty (the block's own, deepest first); the error
    goes on. A folder that existed before, or holds a file, is kept."""

    def __init__(self, folder):
        self.created = []
        p = Path(folder)
        while not os.path.lexists(p) and p.parent != p:
            self.created.append(p)
            p = p.parent

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None:
            for d in self.created:
                try:
                    d.rmdir()
                except OSError:
                    break
        return False


def _unit_float(pixels, shape):
    """uint8 ``pixels`` reshaped to ``shape``, as a new float32 array divided by 255 (so in
    [0, 1]), computed in float32 straight into the result."""
    X = np.empty(shape, dtype=np.float32)
    np.divide(pixels.reshape(shape), np.float32(255.0), out=X, casting="unsafe")
    return X


# ---------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------


def _fetch(urls, dest, verify, dataset, split, expected_files):
    """Download the first good copy among ``urls`` to ``dest``; return ``dest``.

    Each attempt is written by :func:`fastconv._fileio.atomic_write`: into a
    temporary file in ``dest``'s directory, which ``verify(f)`` then checks
    (``f``: that file, open for reading at its start; a bad copy raises
    ValueError), and which only then is renamed into place; on any error it is
    removed. So ``dest`` is either absent or verified, and no partial file is
    left behind. When no mirror serves a good copy, DownloadError lists why.
    """
    folder = dest.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot create the {_DISPLAY[dataset]} directory {folder} ({exc}).",
            [("writable_root", {})],
        ) from None
    errors = []
    for url in urls:

        def download(f, url=url):
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as resp:
                shutil.copyfileobj(resp, f, 1 << 20)
            f.flush()
            f.seek(0)
            verify(f)

        try:
            return atomic_write(dest, download, mode="w+b")
        except ValueError as exc:
            errors.append(f"{url} served a file that failed verification ({exc})")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"{url}: {exc}")
    raise DownloadError(
        f"could not download {_DISPLAY[dataset]} ({split} split) into {folder}: "
        + "; ".join(errors) + ".",
        [("fetch_elsewhere", {"files": " and ".join(expected_files), "folder": str(folder),
                              "mirrors": " or ".join(MIRRORS[dataset])}),
         ("root", {})],
    )
