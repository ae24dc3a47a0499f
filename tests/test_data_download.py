"""Tests of fastconv.data's cache folder, missing files and downloads (with a stubbed urlopen)."""

from __future__ import annotations

import gzip
import io
import urllib.request

import numpy as np
import pytest

# offline: an autouse fixture, imported to apply here (no test touches the network)
from test_data_common import idx_bytes, offline, sha256, small_mnist, trust  # noqa: F401

from fastconv import data

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
    assert not (tmp_path / "cache").exists()  # no partial files, nor the folders the call made


def test_offline_download_error_fashion_and_cifar(tmp_path, offline):
    with pytest.raises(data.DownloadError, match="train-labels-idx1-ubyte.gz"):
        data.fashion_mnist(tmp_path / "f", split="train")
    assert offline[0].startswith("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")
    with pytest.raises(data.DownloadError) as exc:
        data.cifar10(tmp_path / "c", split="test")
    assert str(tmp_path / "c") in str(exc.value) and "cifar-10-python.tar.gz" in str(exc.value)
    assert offline[-1] == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert not (tmp_path / "c").exists()


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
    with pytest.raises(data.DownloadError, match="checksum mismatch") as exc:
        data.mnist(root, split="test")
    msg = str(exc.value)
    assert all(f"{base}t10k-images-idx3-ubyte.gz served a file that failed verification" in msg
               for base in data.MIRRORS["mnist"])
    assert str(root / "t10k-images-idx3-ubyte.gz") in msg  # a bad copy is named by its destination
    assert sha256(b"garbage") in msg
    assert not root.exists()


class _CutConnection(io.BytesIO):
    """A response that delivers 16 bytes, then fails as a dropped connection does."""

    def read(self, size=-1):
        if self.tell():
            raise ConnectionResetError("connection reset by peer")
        return super().read(16)


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, *a, **k: _CutConnection(b"x" * 100))
    root = tmp_path / "m"
    with pytest.raises(data.DownloadError, match="connection reset by peer"):
        data.fashion_mnist(root, split="test")
    assert not root.exists()  # the temporary file of the partial download is gone, and the folder


# ---------------------------------------------------------------------------
# the errors' structured advice, and the folders a failed call leaves
# ---------------------------------------------------------------------------


def test_errors_carry_their_problem_and_remedies(tmp_path, offline):
    with pytest.raises(data.DatasetNotFoundError) as exc:
        data.mnist(tmp_path, split="test", download=False)
    e = exc.value
    assert isinstance(e, FileNotFoundError)
    assert e.problem.startswith("MNIST test split not found") and "root=" not in e.problem
    assert [key for key, _ in e.remedies] == ["put_files", "root", "download"]
    assert str(e) == f"{e.problem} {data.advice(e.remedies)}"
    # another front end words the same remedies its own way
    words = {"root": "use --data-dir", "download": "drop --no-download"}
    assert data.advice(e.remedies, words).endswith("use --data-dir, or drop --no-download.")
    with pytest.raises(data.DownloadError) as exc:
        data.fashion_mnist(tmp_path / "f", split="test")
    assert [key for key, _ in exc.value.remedies] == ["fetch_elsewhere", "root"]


def test_failed_download_removes_only_the_folders_it_created(tmp_path, offline):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DownloadError):
        data.mnist(tmp_path / "empty", split="test")
    assert (tmp_path / "empty").is_dir()  # it was there before
    with pytest.raises(data.DownloadError):
        data.mnist(tmp_path / "a" / "b" / "c", split="test")
    assert list(tmp_path.iterdir()) == [tmp_path / "empty"]  # a/b/c, all made by the call, are gone
    with pytest.raises(data.DownloadError):
        data.cifar10(tmp_path / "x" / "y", split="test")
    assert not (tmp_path / "x").exists()
