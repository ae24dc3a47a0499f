"""Tests of fastconv.data's MNIST and Fashion-MNIST loaders and IDX parsing.

The loaders run on the real MNIST test split in ../shared/data/mnist (skipped
when that folder is absent) and on small IDX files generated here, including
truncated, corrupt and mislabelled ones. The network is never used.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

# offline: an autouse fixture, imported to apply here (no test touches the network)
from test_data_common import (  # noqa: F401
    idx_bytes,
    md5,
    offline,
    sha256,
    small_mnist,
    trust,
    write_split,
)

from fastconv import data

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
    assert "Delete" in msg and "download=True" in msg


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
    assert str(path) in str(exc.value) and "Delete" in str(exc.value)


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
