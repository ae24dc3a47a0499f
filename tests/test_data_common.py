"""Shared helpers of the tests of fastconv.data (tests/test_data_*.py); no tests here.

``offline`` is an autouse fixture: a test module that imports it runs every
test with urllib's urlopen replaced by a stub that refuses the network and
records the URLs asked for. The other helpers write small IDX files and make
chosen digests trusted in ``fastconv.data.CHECKSUMS``.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest

from fastconv import data


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
