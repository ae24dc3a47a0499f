"""Tests of fastconv.data: dataset loaders, the built-in shapes set, augmentation.

The loaders run on the real MNIST test split in ../shared/data/mnist (skipped
when that folder is absent) and on small IDX and CIFAR-10 files generated
here, including truncated, corrupt and hostile ones. The network is never
used: every test runs with urllib's urlopen replaced by a stub.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import os
import pickle
import shutil
import struct
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from fastconv import data
from fastconv.data import cifar as data_cifar

MNIST_DIR = Path(
    os.environ.get("FASTCONV_MNIST_DIR")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
)
MNIST_TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
have_mnist = pytest.mark.skipif(
    not all((MNIST_DIR / f).is_file() for f in MNIST_TEST_FILES),
    reason=f"real MNIST test files not found in {MNIST_DIR} (set FASTCONV_MNIST_DIR to their folder)",
)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test touches the network: urlopen raises URLError and records the URLs asked for."""
    calls = []

    def fake_urlopen(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    monkeypatch.delenv("FASTCONV_DATA", raising=False)
    return calls


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def md5(b):
    return hashlib.md5(b).hexdigest()


def idx_bytes(arr, code=0x08):
    """An IDX file written by hand: zero, zero, type code, ndim, big-endian dims, big-endian data."""
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + np.ascontiguousarray(arr, dtype=dt).tobytes()


def trust(monkeypatch, dataset, name, *, gz=(), raw=(), file=()):
    """Make ``name`` of ``dataset`` accepted by the given digests (and only by them)."""
    monkeypatch.setitem(
        data.CHECKSUMS[dataset], name, {"gz": tuple(gz), "raw": tuple(raw), "file": tuple(file)}
    )


def small_mnist(n=7, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    return images, labels


def write_split(monkeypatch, folder, images, labels, *, split="test", gz=True, dataset="mnist"):
    """Write a generated split to ``folder`` and trust its decompressed content."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    paths = []
    for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
        name = f"{prefix}-{kind}-ubyte"
        content = idx_bytes(arr)
        path = folder / (name + ".gz" if gz else name)
        path.write_bytes(gzip.compress(content) if gz else content)
        trust(monkeypatch, dataset, name, raw=[sha256(content)])
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------
# real MNIST (shared test split)
# ---------------------------------------------------------------------------


@have_mnist
def test_real_mnist_test_split():
    X, y = data.mnist(MNIST_DIR, split="test", download=False)
    assert X.shape == (10000, 1, 28, 28) and X.dtype == np.float32 and X.flags.c_contiguous
    assert y.shape == (10000,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert 0.12 < X.mean() < 0.145  # MNIST's well-known pixel mean (0.13)
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # pixel values are k/255 exactly
    k = X.astype(np.float64) * 255.0
    assert np.abs(k - np.round(k)).max() < 1e-4


@have_mnist
def test_real_mnist_recompressed_accepted_by_content(tmp_path):
    """The shared files are recompressed: their gzip bytes match no official digest,
    so they are accepted by the sha256 of their decompressed content."""
    entry = data.CHECKSUMS["mnist"]["t10k-images-idx3-ubyte"]
    gz = (MNIST_DIR / MNIST_TEST_FILES[0]).read_bytes()
    assert md5(gz) not in entry["gz"] and sha256(gz) not in entry["gz"]
    assert sha256(gzip.decompress(gz)) in entry["raw"]
    # the uncompressed files are read too
    for f in MNIST_TEST_FILES:
        (tmp_path / f[:-3]).write_bytes(gzip.decompress((MNIST_DIR / f).read_bytes()))
    X, y = data.mnist(tmp_path, split="test", download=False)
    X2, y2 = data.mnist(MNIST_DIR, split="test", download=False)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)


@have_mnist
def test_real_mnist_tampered_copy_is_rejected(tmp_path):
    for f in MNIST_TEST_FILES:
        shutil.copy(MNIST_DIR / f, tmp_path / f)
    raw = bytearray(gzip.decompress((MNIST_DIR / MNIST_TEST_FILES[1]).read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # one label changed, still a well-formed IDX file
    bad = tmp_path / MNIST_TEST_FILES[1]
    bad.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ValueError) as exc:
        data.mnist(tmp_path, split="test", download=False)
    msg = str(exc.value)
    assert str(bad) in msg and "checksum mismatch" in msg
    assert "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2" in msg  # expected
    assert sha256(bytes(raw)) in msg  # actual
    assert "delete" in msg and "download=True" in msg


@have_mnist
def test_real_mnist_train_split_missing(tmp_path):
    for f in MNIST_TEST_FILES:
        shutil.copy(MNIST_DIR / f, tmp_path / f)
    with pytest.raises(FileNotFoundError) as exc:
        data.mnist(tmp_path, split="train", download=False)
    msg = str(exc.value)
    assert str(tmp_path) in msg
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg


# ---------------------------------------------------------------------------
# generated IDX files
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("split", ["train", "test"])
def test_idx_round_trip(tmp_path, monkeypatch, gz, split):
    images, labels = small_mnist(9)
    write_split(monkeypatch, tmp_path, images, labels, split=split, gz=gz)
    X, y = data.mnist(tmp_path, split=split, download=False)
    assert X.shape == (9, 1, 28, 28) and X.dtype == np.float32
    assert np.array_equal(X[:, 0], (images / np.float32(255)).astype(np.float32))
    assert np.array_equal(np.round(X * 255).astype(np.uint8)[:, 0], images)
    assert y.dtype == np.int64 and np.array_equal(y, labels)


def test_fashion_mnist_uses_its_own_table(tmp_path, monkeypatch):
    images, labels = small_mnist(5, seed=1)
    write_split(monkeypatch, tmp_path, images, labels, dataset="fashion_mnist")
    X, y = data.fashion_mnist(tmp_path, split="test", download=False)
    assert X.shape == (5, 1, 28, 28) and np.array_equal(y, labels)
    # the same files are unknown to the MNIST table
    with pytest.raises(ValueError, match="checksum mismatch"):
        data.mnist(tmp_path, split="test", download=False)
    assert len(data.FASHION_MNIST_CLASSES) == 10


def test_gzip_accepted_by_its_own_digest(tmp_path, monkeypatch):
    images, labels = small_mnist(4)
    for name, arr in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        blob = gzip.compress(idx_bytes(arr))
        (tmp_path / (name + ".gz")).write_bytes(blob)
        trust(monkeypatch, "mnist", name, gz=[md5(blob)])  # md5 of the gzip file only
    _, y = data.mnist(tmp_path, split="test", download=False)
    assert np.array_equal(y, labels)


@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_read_idx_dtypes(tmp_path, code):
    rng = np.random.default_rng(code)
    dt = {
        0x08: np.uint8,
        0x09: np.int8,
        0x0B: np.int16,
        0x0C: np.int32,
        0x0D: np.float32,
        0x0E: np.float64,
    }[code]
    arr = (rng.standard_normal((3, 4, 5)) * 100).astype(dt)
    (tmp_path / "a.idx").write_bytes(idx_bytes(arr, code))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(idx_bytes(arr, code)))
    for name in ("a.idx", "a.idx.gz"):
        out = data.read_idx(tmp_path / name)
        assert out.dtype == np.dtype(dt) and out.dtype.isnative
        assert np.array_equal(out, arr)
        out[0, 0, 0] = 0  # a writable copy


def _bad_split(tmp_path, monkeypatch, image_content, label_content, *, gz=True, trust_gz=False):
    """Write the two test-split files from raw contents; trust exactly what was written."""
    for name, content in (
        ("t10k-images-idx3-ubyte", image_content),
        ("t10k-labels-idx1-ubyte", label_content),
    ):
        blob = gzip.compress(content) if gz else content
        if isinstance(trust_gz, dict) and name in trust_gz:
            blob = trust_gz[name](blob)
        path = tmp_path / (name + ".gz" if gz else name)
        path.write_bytes(blob)
        if gz:
            trust(monkeypatch, "mnist", name, gz=[sha256(blob)], raw=[sha256(content)])
        else:
            trust(monkeypatch, "mnist", name, raw=[sha256(content)])


def test_truncated_gzip_stream(tmp_path, monkeypatch):
    images, labels = small_mnist(6)
    cut = {"t10k-images-idx3-ubyte": lambda b: b[: len(b) - 30]}
    _bad_split(tmp_path, monkeypatch, idx_bytes(images), idx_bytes(labels), trust_gz=cut)
    with pytest.raises(ValueError, match="truncated") as exc:
        data.mnist(tmp_path, split="test", download=False)
    assert "t10k-images-idx3-ubyte.gz" in str(exc.value)


def test_truncated_gzip_unknown_digest(tmp_path, monkeypatch):
    images, labels = small_mnist(6)
    write_split(monkeypatch, tmp_path, images, labels)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ValueError, match="checksum mismatch.*does not decompress") as exc:
        data.mnist(tmp_path, split="test", download=False)
    assert str(path) in str(exc.value) and "delete" in str(exc.value)


def test_corrupt_gzip_stream(tmp_path, monkeypatch):
    images, labels = small_mnist(6)

    def flip(b):
        b = bytearray(b)
        b[len(b) // 2] ^= 0xFF
        return bytes(b)

    _bad_split(
        tmp_path,
        monkeypatch,
        idx_bytes(images),
        idx_bytes(labels),
        trust_gz={"t10k-images-idx3-ubyte": flip},
    )
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        data.mnist(tmp_path, split="test", download=False)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_idx_payload(tmp_path, monkeypatch, gz):
    images, labels = small_mnist(6)
    _bad_split(tmp_path, monkeypatch, idx_bytes(images)[:-1], idx_bytes(labels), gz=gz)
    with pytest.raises(ValueError, match="IDX file truncated"):
        data.mnist(tmp_path, split="test", download=False)


def test_idx_trailing_bytes(tmp_path, monkeypatch):
    images, labels = small_mnist(6)
    _bad_split(tmp_path, monkeypatch, idx_bytes(images), idx_bytes(labels) + b"\0", gz=False)
    with pytest.raises(ValueError, match="trailing bytes"):
        data.mnist(tmp_path, split="test", download=False)


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda b: b"\x01" + b[1:], "bad magic number"),
        (lambda b: b[:2] + b"\x07" + b[3:], "unknown type code"),
        (lambda b: b[:3] + b"\x00" + b[4:], "0 dimensions"),
        (lambda b: b[:10], "truncated IDX header"),
        (lambda b: b[:3], "too short"),
    ],
)
def test_bad_idx_header(tmp_path, monkeypatch, mutate, pattern):
    images, labels = small_mnist(3)
    _bad_split(tmp_path, monkeypatch, mutate(idx_bytes(images)), idx_bytes(labels), gz=False)
    with pytest.raises(ValueError, match=pattern):
        data.mnist(tmp_path, split="test", download=False)


def test_label_count_mismatch(tmp_path, monkeypatch):
    images, labels = small_mnist(6)
    _bad_split(tmp_path, monkeypatch, idx_bytes(images), idx_bytes(labels[:5]))
    with pytest.raises(ValueError, match="6 images but .* 5 labels"):
        data.mnist(tmp_path, split="test", download=False)


def test_wrong_idx_kinds(tmp_path, monkeypatch):
    images, labels = small_mnist(6)
    _bad_split(tmp_path, monkeypatch, idx_bytes(labels), idx_bytes(labels))
    with pytest.raises(ValueError, match="expected a 3-d unsigned-byte IDX"):
        data.mnist(tmp_path, split="test", download=False)
    _bad_split(tmp_path, monkeypatch, idx_bytes(images), idx_bytes(labels.astype(np.int32), 0x0C))
    with pytest.raises(ValueError, match="expected a 1-d unsigned-byte IDX"):
        data.mnist(tmp_path, split="test", download=False)


def test_label_out_of_range(tmp_path, monkeypatch):
    images, labels = small_mnist(6)
    labels[2] = 10
    _bad_split(tmp_path, monkeypatch, idx_bytes(images), idx_bytes(labels))
    with pytest.raises(ValueError, match="label 10 is out of range"):
        data.mnist(tmp_path, split="test", download=False)


def test_unknown_file_is_rejected(tmp_path):
    images, labels = small_mnist(3)
    for name, arr in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        (tmp_path / name).write_bytes(idx_bytes(arr))
    with pytest.raises(ValueError) as exc:
        data.mnist(tmp_path, split="test", download=False)
    msg = str(exc.value)
    assert str(tmp_path / "t10k-images-idx3-ubyte") in msg
    assert "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7" in msg
    assert sha256(idx_bytes(images)) in msg


def test_loader_argument_errors(tmp_path):
    with pytest.raises(ValueError, match='split must be "train" or "test"'):
        data.mnist(tmp_path, split="validation")
    with pytest.raises(ValueError, match="split"):
        data.cifar10(tmp_path, split="val")
    with pytest.raises(TypeError, match="download must be a bool"):
        data.fashion_mnist(tmp_path, download="yes")
    with pytest.raises(TypeError, match="root must be a path"):
        data.mnist(42)


# ---------------------------------------------------------------------------
# cache directory, missing files, offline downloads
# ---------------------------------------------------------------------------


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "d"))
    assert data.default_root("mnist") == tmp_path / "d" / "mnist"
    monkeypatch.delenv("FASTCONV_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_root("cifar10") == tmp_path / "xdg" / "fastconv" / "cifar10"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (
        data.default_root("fashion_mnist")
        == tmp_path / "home" / ".cache" / "fastconv" / "fashion_mnist"
    )
    with pytest.raises(ValueError, match="dataset must be one of"):
        data.default_root("imagenet")


def test_missing_files_without_download(monkeypatch, tmp_path, offline):
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as exc:
        data.mnist(split="test", download=False)
    msg = str(exc.value)
    assert str(tmp_path / "mnist") in msg
    assert "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert "download=True" in msg
    assert not (tmp_path / "mnist").exists()  # nothing created
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        data.cifar10(tmp_path / "c", split="train", download=False)
    assert offline == []


def test_offline_download_error(tmp_path, offline):
    root = tmp_path / "cache" / "mnist"
    with pytest.raises(data.DownloadError) as exc:
        data.mnist(root, split="test")
    assert isinstance(exc.value, ConnectionError)
    msg = str(exc.value)
    assert str(root) in msg
    assert "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert "network disabled in tests" in msg
    # both standard mirrors were tried, the S3 mirror first
    assert offline[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz"
    assert offline[1] == "http://yann.lecun.com/exdb/mnist/t10k-images-idx3-ubyte.gz"
    assert list(root.iterdir()) == []  # no partial files left behind


def test_offline_download_error_fashion_and_cifar(tmp_path, offline):
    with pytest.raises(data.DownloadError, match="train-labels-idx1-ubyte.gz"):
        data.fashion_mnist(tmp_path / "f", split="train")
    assert offline[0].startswith("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")
    with pytest.raises(data.DownloadError) as exc:
        data.cifar10(tmp_path / "c", split="test")
    assert str(tmp_path / "c") in str(exc.value) and "cifar-10-python.tar.gz" in str(exc.value)
    assert offline[-1] == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert list((tmp_path / "c").iterdir()) == []


def test_download_verifies_and_falls_back(tmp_path, monkeypatch):
    """A mirror serving a bad copy is skipped; the good copy is verified, then renamed into place."""
    images, labels = small_mnist(5)
    good = {}
    for name, arr in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        good[name + ".gz"] = gzip.compress(idx_bytes(arr))
        trust(monkeypatch, "mnist", name, gz=[sha256(good[name + ".gz"])])
    served = []

    def fake_urlopen(url, *args, **kwargs):
        served.append(url)
        fname = url.rsplit("/", 1)[1]
        if url.startswith(data.MIRRORS["mnist"][0]):
            return io.BytesIO(b"<html>not the file</html>")
        return io.BytesIO(good[fname])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    root = tmp_path / "m"
    _, y = data.mnist(root, split="test")
    assert np.array_equal(y, labels)
    assert sorted(p.name for p in root.iterdir()) == sorted(good)
    assert len(served) == 4
    for fname, blob in good.items():
        assert (root / fname).read_bytes() == blob


def test_download_all_mirrors_bad(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, *a, **k: io.BytesIO(b"garbage"))
    root = tmp_path / "m"
    with pytest.raises(data.DownloadError, match="checksum mismatch"):
        data.mnist(root, split="test")
    assert list(root.iterdir()) == []


# ---------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------


def cifar_batch(n, seed, label="batch"):
    rng = np.random.default_rng(seed)
    return {
        "batch_label": label,
        "labels": [int(v) for v in rng.integers(0, 10, n)],
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img_{seed}_{i}.png" for i in range(n)],
    }


def py2_pickle(batch):
    """A protocol-2 pickle as Python 2's cPickle wrote the CIFAR-10 batches: byte strings
    (SHORT_BINSTRING / BINSTRING) and NumPy 1's numpy.core.multiarray global."""
    out = bytearray(b"\x80\x02}(")  # PROTO 2, EMPTY_DICT, MARK

    def s(v):
        b = v if isinstance(v, bytes) else v.encode("latin1")
        out.extend(
            b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b
        )

    def i(v):
        out.extend(b"J" + struct.pack("<i", v))  # BININT

    arr = batch["data"]
    s("batch_label"), s(batch["batch_label"])
    s("labels"), out.extend(b"](")
    for v in batch["labels"]:
        i(v)
    out.extend(b"e")  # APPENDS
    s("data")
    out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
    i(0), out.extend(b"\x85"), s("b"), out.extend(b"\x87R(")  # TUPLE1, TUPLE3, REDUCE, MARK
    i(1), i(arr.shape[0]), i(arr.shape[1]), out.extend(b"\x86")  # state: version, shape
    out.extend(b"cnumpy\ndtype\n"), s("u1"), i(0), i(1), out.extend(b"\x87R(")
    i(3), s("|"), out.extend(b"NNN"), i(-1), i(-1), i(0), out.extend(b"tb")  # dtype state, BUILD
    out.extend(b"\x89"), s(arr.tobytes()), out.extend(b"tb")  # NEWFALSE, raw data, TUPLE, BUILD
    s("filenames"), out.extend(b"](")
    for f in batch["filenames"]:
        s(f)
    out.extend(b"eu.")  # APPENDS, SETITEMS, STOP
    return bytes(out)


CIFAR_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def make_cifar_dir(monkeypatch, folder, n=3, style="py3"):
    """Write the six batch files to ``folder`` and trust each one's md5; return the batches."""
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for k, name in enumerate(CIFAR_NAMES):
        batch = cifar_batch(n + k % 2, seed=k, label=name)
        blob = py2_pickle(batch) if style == "py2" else pickle.dumps(batch, protocol=4)
        (folder / name).write_bytes(blob)
        trust(monkeypatch, "cifar10", name, file=[md5(blob)])
        batches[name] = batch
    return batches


def expected_cifar(batches, names):
    X = np.concatenate([batches[n]["data"] for n in names]).reshape(-1, 3, 32, 32) / np.float32(255)
    y = np.concatenate([batches[n]["labels"] for n in names]).astype(np.int64)
    return X.astype(np.float32), y


@pytest.mark.parametrize("style", ["py3", "py2"])
def test_cifar_batches(tmp_path, monkeypatch, style):
    batches = make_cifar_dir(monkeypatch, tmp_path / "cifar-10-batches-py", style=style)
    X, y = data.cifar10(tmp_path, split="train", download=False)
    Xe, ye = expected_cifar(batches, CIFAR_NAMES[:5])
    assert X.shape == (Xe.shape[0], 3, 32, 32) and X.dtype == np.float32
    assert np.array_equal(X, Xe) and y.dtype == np.int64 and np.array_equal(y, ye)
    X, y = data.cifar10(tmp_path, split="test", download=False)
    Xe, ye = expected_cifar(batches, ["test_batch"])
    assert np.array_equal(X, Xe) and np.array_equal(y, ye)
    assert len(data.CIFAR10_CLASSES) == 10


def test_cifar_batches_directly_in_root(tmp_path, monkeypatch):
    batches = make_cifar_dir(monkeypatch, tmp_path)
    _, y = data.cifar10(tmp_path, split="test", download=False)
    assert np.array_equal(y, batches["test_batch"]["labels"])


def make_tar(path, members):
    """members: list of (name, bytes) or (name, TarInfo-modifier)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            if isinstance(payload, bytes):
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                payload(info)
                tar.addfile(info)


def test_cifar_from_archive(tmp_path, monkeypatch):
    src = tmp_path / "src"
    batches = make_cifar_dir(monkeypatch, src)
    root = tmp_path / "root"
    root.mkdir()
    archive = root / "cifar-10-python.tar.gz"
    members = [("cifar-10-batches-py/readme.html", b"<html/>")]
    members += [(f"cifar-10-batches-py/{n}", (src / n).read_bytes()) for n in CIFAR_NAMES]
    make_tar(archive, members)
    trust(monkeypatch, "cifar10", "cifar-10-python.tar.gz", file=[sha256(archive.read_bytes())])
    _, y = data.cifar10(root, split="test", download=False)
    assert np.array_equal(y, batches["test_batch"]["labels"])
    extracted = sorted(p.name for p in (root / "cifar-10-batches-py").iterdir())
    assert extracted == sorted(CIFAR_NAMES)  # only the batches, nothing else
    assert sorted(p.name for p in root.iterdir()) == [
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
    ]
    X2, _ = data.cifar10(root, split="train", download=False)
    assert X2.shape[0] == sum(len(batches[n]["labels"]) for n in CIFAR_NAMES[:5])


def test_cifar_archive_unknown_digest(tmp_path, monkeypatch):
    src = tmp_path / "src"
    make_cifar_dir(monkeypatch, src)
    root = tmp_path / "root"
    root.mkdir()
    make_tar(
        root / "cifar-10-python.tar.gz",
        [(f"cifar-10-batches-py/{n}", (src / n).read_bytes()) for n in CIFAR_NAMES],
    )
    with pytest.raises(ValueError) as exc:
        data.cifar10(root, split="test", download=False)
    assert "checksum mismatch" in str(exc.value)
    assert "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce" in str(exc.value)
    assert not (root / "cifar-10-batches-py").exists()


@pytest.mark.parametrize(
    "evil",
    ["../escaped.txt", "/tmp/fastconv-abs-escape.txt", "cifar-10-batches-py/../../escaped.txt"],
)
def test_cifar_archive_path_traversal(tmp_path, monkeypatch, evil):
    src = tmp_path / "src"
    make_cifar_dir(monkeypatch, src)
    root = tmp_path / "a" / "root"
    root.mkdir(parents=True)
    archive = root / "cifar-10-python.tar.gz"
    members = [(evil, b"pwned")] + [
        (f"cifar-10-batches-py/{n}", (src / n).read_bytes()) for n in CIFAR_NAMES
    ]
    make_tar(archive, members)
    trust(monkeypatch, "cifar10", "cifar-10-python.tar.gz", file=[sha256(archive.read_bytes())])
    with pytest.raises(ValueError, match="unsafe member path"):
        data.cifar10(root, split="test", download=False)
    assert not (tmp_path / "a" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/fastconv-abs-escape.txt").exists()
    assert not (root / "cifar-10-batches-py").exists()


def test_cifar_archive_symlink_member(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    archive = root / "cifar-10-python.tar.gz"

    def symlink(info):
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"

    make_tar(archive, [("cifar-10-batches-py/test_batch", symlink)])
    trust(monkeypatch, "cifar10", "cifar-10-python.tar.gz", file=[sha256(archive.read_bytes())])
    with pytest.raises(ValueError, match="not a regular file"):
        data.cifar10(root, split="test", download=False)
    assert not (root / "cifar-10-batches-py" / "test_batch").exists()


def test_cifar_truncated_archive(tmp_path, monkeypatch):
    src = tmp_path / "src"
    make_cifar_dir(monkeypatch, src, n=40)
    root = tmp_path / "root"
    root.mkdir()
    archive = root / "cifar-10-python.tar.gz"
    make_tar(archive, [(f"cifar-10-batches-py/{n}", (src / n).read_bytes()) for n in CIFAR_NAMES])
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    trust(monkeypatch, "cifar10", "cifar-10-python.tar.gz", file=[sha256(archive.read_bytes())])
    with pytest.raises(ValueError, match="corrupt or truncated archive"):
        data.cifar10(root, split="test", download=False)
    assert not (root / "cifar-10-batches-py").exists()
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-python.tar.gz"]  # no temp dirs left


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize("kind", ["os.system", "eval", "object array", "codecs"])
def test_cifar_malicious_pickle_refused(tmp_path, monkeypatch, kind):
    marker = tmp_path / "pwned"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = cifar_batch(2, seed=0)
    if kind == "os.system":
        batch["labels"] = _Evil(marker)
        blob = pickle.dumps(batch, protocol=2)
    elif kind == "eval":
        batch["batch_label"] = _EvalEvil()
        blob = pickle.dumps(batch, protocol=4)
    elif kind == "object array":
        batch["data"] = np.array([None, 1], dtype=object)
        blob = pickle.dumps(batch, protocol=4)
    else:  # protocol 2 from Python 3 rebuilds bytes with _codecs.encode: not needed, refused
        blob = pickle.dumps(batch, protocol=2)
    (folder / "test_batch").write_bytes(blob)
    trust(
        monkeypatch, "cifar10", "test_batch", file=[md5(blob)]
    )  # even a "verified" file is parsed safely
    with pytest.raises(ValueError, match="not a valid CIFAR-10 batch.*refusing") as exc:
        data.cifar10(tmp_path, split="test", download=False)
    assert str(folder / "test_batch") in str(exc.value)
    assert not marker.exists()


def test_cifar_unverified_batch_is_never_unpickled(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = cifar_batch(2, seed=0)
    batch["labels"] = _Evil(marker)
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))

    def must_not_run(path):
        raise AssertionError(f"unpickled unverified {path}")

    monkeypatch.setattr(data_cifar, "_unpickle_batch", must_not_run)
    with pytest.raises(ValueError, match="checksum mismatch") as exc:
        data.cifar10(tmp_path, split="test", download=False)
    assert "40351d587109b95175f43aff81a1287e" in str(exc.value)  # the official md5
    assert not marker.exists()


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda blob, b: blob[: len(blob) // 2], "not a valid CIFAR-10 batch"),
        (lambda blob, b: blob + b"junk", "trailing bytes"),
        (lambda blob, b: pickle.dumps([1, 2], protocol=4), "not a dict"),
        (lambda blob, b: pickle.dumps({**b, "labels": b["labels"][:-1]}, protocol=4), "images but"),
        (
            lambda blob, b: pickle.dumps({**b, "labels": [11] * len(b["labels"])}, protocol=4),
            "0..9",
        ),
        (
            lambda blob, b: pickle.dumps({**b, "labels": ["a"] * len(b["labels"])}, protocol=4),
            "list of ints",
        ),
        (
            lambda blob, b: pickle.dumps({**b, "data": b["data"][:, :100]}, protocol=4),
            r"shape \(N, 3072\)",
        ),
        (
            lambda blob, b: pickle.dumps({**b, "data": b["data"].astype(np.int16)}, protocol=4),
            "uint8",
        ),
    ],
)
def test_cifar_bad_batches(tmp_path, monkeypatch, mutate, pattern):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = cifar_batch(4, seed=1)
    blob = mutate(pickle.dumps(batch, protocol=4), batch)
    (folder / "test_batch").write_bytes(blob)
    trust(monkeypatch, "cifar10", "test_batch", file=[sha256(blob)])
    with pytest.raises(ValueError, match=pattern):
        data.cifar10(tmp_path, split="test", download=False)


# ---------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------


def test_shapes_basic():
    X, y = data.shapes(1003, seed=0)
    assert X.shape == (1003, 1, 28, 28) and X.dtype == np.float32 and X.flags.c_contiguous
    assert y.shape == (1003,) and y.dtype == np.int64
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert np.bincount(y, minlength=10).tolist() == [101, 101, 101] + [100] * 7
    assert len(data.SHAPES_CLASSES) == 10 and len(set(data.SHAPES_CLASSES)) == 10
    # every image carries a bright figure
    assert (X.reshape(len(X), -1).max(axis=1) > 0.55).all()
    # labels are shuffled, not sorted by class
    assert (np.diff(y) != 0).sum() > 500


def test_shapes_deterministic():
    X1, y1 = data.shapes(300, seed=5)
    X2, y2 = data.shapes(300, seed=5)
    X3, _ = data.shapes(300, seed=6)
    assert np.array_equal(X1, X2) and np.array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


def test_shapes_split_disjoint():
    (Xtr, _), (Xte, yte) = data.shapes_split(200, 100, seed=1)
    assert Xtr.shape == (200, 1, 28, 28) and Xte.shape == (100, 1, 28, 28)
    assert np.bincount(yte).tolist() == [10] * 10
    a = Xtr.reshape(200, -1)
    b = Xte.reshape(100, -1)
    assert not any((a == row).all(axis=1).any() for row in b)
    (Xtr2, _), (Xte2, _) = data.shapes_split(200, 100, seed=1)
    assert np.array_equal(Xtr, Xtr2) and np.array_equal(Xte, Xte2)


def test_shapes_size_and_noise():
    X, _ = data.shapes(40, seed=0, size=40, noise=0.0)
    assert X.shape == (40, 1, 40, 40)
    # without noise the background is exactly zero
    assert (X.reshape(40, -1).min(axis=1) == 0).all()
    X0, _ = data.shapes(0)
    assert X0.shape == (0, 1, 28, 28)


def test_shapes_not_separable_by_mean_intensity():
    (Xtr, ytr), (Xte, yte) = data.shapes_split(3000, 1000, seed=2)
    m, mt = Xtr.mean(axis=(1, 2, 3)), Xte.mean(axis=(1, 2, 3))
    edges = np.quantile(m, np.linspace(0, 1, 31)[1:-1])
    bins, bins_t = np.searchsorted(edges, m), np.searchsorted(edges, mt)
    vote = np.array([np.bincount(ytr[bins == k], minlength=10).argmax() for k in range(30)])
    acc = (vote[bins_t] == yte).mean()
    assert acc < 0.35, acc  # a CNN gets > 0.95 on this set; total ink alone is a poor guide


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"n": -1}, ValueError, "n must be an int >= 0, got -1"),
        ({"size": 8}, ValueError, "size must be an int >= 12, got 8"),
        ({"noise": -0.1}, ValueError, r"noise must be in \[0, inf\], got -0.1"),
        ({"n": 2.5}, TypeError, "n must be an int, got float 2.5"),
        ({"noise": float("nan")}, ValueError, "noise must be finite"),
        ({"seed": -1}, ValueError, "seed must be an int >= 0"),
    ],
)
def test_shapes_bad_args(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        data.shapes(**kwargs)
    if "seed" not in kwargs:
        with pytest.raises(error, match=pattern):
            data.shapes_split(**{("n_train" if k == "n" else k): v for k, v in kwargs.items()})


def test_load_by_name(tmp_path, monkeypatch):
    X, y = data.load("shapes", "test")
    assert X.shape == (1000, 1, 28, 28)
    images, labels = small_mnist(3)
    write_split(monkeypatch, tmp_path, images, labels)
    X, y = data.load("mnist", "test", root=tmp_path, download=False)
    assert np.array_equal(y, labels)
    with pytest.raises(ValueError, match="name must be one of"):
        data.load("imagenet")


# ---------------------------------------------------------------------------
# augmentation
# ---------------------------------------------------------------------------


def frozen(dtype=np.float32, shape=(6, 2, 5, 7), seed=0):
    X = np.random.default_rng(seed).random(shape).astype(dtype)
    X.setflags(write=False)  # any write to the input would raise
    return X


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "fn",
    [
        lambda X, r: data.random_flip(X, r),
        lambda X, r: data.random_flip(X, r, horizontal=False, vertical=True, p=0.7),
        lambda X, r: data.random_shift(X, r, 2),
        lambda X, r: data.random_crop(X, r, size=(4, 6), padding=1),
        lambda X, r: data.add_noise(X, r, 0.1),
        lambda X, r: data.Augment(hflip=True, shift=1, noise=0.05)(X, r),
    ],
)
def test_augment_shape_dtype_no_mutation(fn, dtype):
    X = frozen(dtype)
    before = X.copy()
    out = fn(X, np.random.default_rng(1))
    assert out.dtype == X.dtype and out.shape[:2] == X.shape[:2]
    assert out is not X and not np.shares_memory(out, X)
    assert np.array_equal(X, before)
    out2 = fn(X, np.random.default_rng(1))
    assert np.array_equal(out, out2)  # same rng state, same result


def test_random_flip_exact():
    X = frozen()
    assert np.array_equal(data.random_flip(X, 0, p=1.0), X[..., ::-1])
    assert np.array_equal(data.random_flip(X, 0, p=0.0), X)
    assert np.array_equal(
        data.random_flip(X, 0, horizontal=False, vertical=True, p=1.0), X[:, :, ::-1]
    )
    out = data.random_flip(frozen(shape=(400, 1, 3, 3)), 0, p=0.5)
    flipped = (out != frozen(shape=(400, 1, 3, 3))).any(axis=(1, 2, 3)).sum()
    assert 120 < flipped < 280


def _window(Xp, oy, ox, h, w):
    return Xp[:, oy : oy + h, ox : ox + w]


def test_random_shift_is_a_translation():
    X = frozen(shape=(50, 2, 6, 5))
    out = data.random_shift(X, 3, max_shift=2)
    Xp = np.pad(X, ((0, 0), (0, 0), (2, 2), (2, 2)))
    seen = set()
    for i in range(len(X)):
        hits = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if np.array_equal(out[i], _window(Xp[i], dy, dx, 6, 5))
        ]
        assert hits, f"image {i} is not a shifted copy"
        seen.update(hits)
    assert len(seen) > 10  # shifts vary
    assert np.array_equal(data.random_shift(X, 0, max_shift=0), X)


def test_random_crop_windows():
    X = frozen(shape=(30, 1, 8, 8))
    out = data.random_crop(X, 4, size=5, padding=2)
    assert out.shape == (30, 1, 5, 5)
    Xp = np.pad(X, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for i in range(len(X)):
        assert any(
            np.array_equal(out[i], _window(Xp[i], a, b, 5, 5)) for a in range(8) for b in range(8)
        )
    assert np.array_equal(data.random_crop(X, 0), X)
    with pytest.raises(ValueError, match="larger than the padded image"):
        data.random_crop(X, 0, size=11, padding=1)


def test_add_noise_statistics():
    X = np.zeros((20, 1, 50, 50), dtype=np.float32)
    out = data.add_noise(X, 0, std=0.2)
    assert abs(out.mean()) < 0.01 and abs(out.std() - 0.2) < 0.01
    clipped = data.add_noise(X, 0, std=0.2, clip=(0.0, 1.0))
    assert clipped.min() == 0.0 and clipped.max() <= 1.0
    same = data.add_noise(X, 0, std=0.0)
    assert np.array_equal(same, X) and same is not X


def test_augment_composition():
    X = frozen(shape=(8, 1, 10, 10))
    aug = data.Augment(hflip=True, p=1.0, crop=8, padding=0)
    out = aug(X, 0)
    assert out.shape == (8, 1, 8, 8)
    double = data.Augment(lambda x, r: x * 2, lambda x, r: x + 1)
    assert np.allclose(double(X), X * 2 + 1)
    nothing = data.Augment()
    out = nothing(X)
    assert np.array_equal(out, X) and out is not X
    nested = data.Augment(data.Augment(vflip=True, p=1.0), hflip=True, p=1.0)
    assert np.array_equal(nested(X, 0), X[:, :, ::-1, ::-1])
    assert "hflip=True" in repr(data.Augment(hflip=True, shift=2))
    # a seed gives a reproducible chain
    aug = data.Augment(hflip=True, shift=2, noise=0.1)
    assert np.array_equal(aug(X, 7), aug(X, 7))


def test_augment_argument_errors():
    X = frozen()
    with pytest.raises(TypeError, match="float32 or float64"):
        data.random_flip(X.astype(np.uint8), 0)
    with pytest.raises(ValueError, match="4-d"):
        data.random_shift(X[0], 0)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        data.random_flip(X, 0, p=1.5)
    with pytest.raises(ValueError, match="max_shift"):
        data.random_shift(X, 0, max_shift=-1)
    with pytest.raises(ValueError, match="std must be"):
        data.add_noise(X, 0, std=-1)
    with pytest.raises(TypeError, match="rng must be"):
        data.random_flip(X, "seed")
    with pytest.raises(TypeError, match="callable"):
        data.Augment(3)
    with pytest.raises(ValueError, match="noise must be"):
        data.Augment(noise=-1)


# ---------------------------------------------------------------------------
# module hygiene
# ---------------------------------------------------------------------------


def test_data_module_does_not_import_native_code():
    """fastconv.data is plain Python + NumPy: its modules import, at their top level only,
    the standard library, numpy, each other, and of fastconv only _args and _fileio."""
    folder = Path(data.__file__).parent
    modules = {p.stem for p in folder.glob("*.py")}
    assert {"__init__", "download", "mnist", "cifar", "shapes", "augment"} <= modules
    local = set()
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            assert id(node) in top, f"{path.name}:{node.lineno}: import inside a function"
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                names = ["." * node.level + (node.module or "")]
            for m in names:
                if m.startswith(".."):
                    local.add(m)
                elif m.startswith("."):
                    assert m[1:] in modules, f"{path.name} imports {m}"
                else:
                    assert m.split(".")[0] in {"numpy"} | _STDLIB, f"{path.name} imports {m}"
    assert local == {".._args", ".._fileio"}, local


_STDLIB = {
    "__future__",
    "gzip",
    "hashlib",
    "http",
    "io",
    "math",
    "os",
    "pickle",
    "shutil",
    "struct",
    "tarfile",
    "tempfile",
    "urllib",
    "zlib",
    "pathlib",
}
