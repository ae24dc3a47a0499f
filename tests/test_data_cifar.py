"""Tests of fastconv.data.cifar10 on small generated batches and archives, including
truncated, hostile (path traversal, symlinks, malicious pickles) and unverified ones."""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest

# offline: an autouse fixture, imported to apply here (no test touches the network)
from test_data_common import md5, offline, sha256, trust  # noqa: F401

from fastconv import data
from fastconv.data import cifar as data_cifar

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


def test_cifar_download_verified_placed_and_extracted(tmp_path, monkeypatch):
    src = tmp_path / "src"
    batches = make_cifar_dir(monkeypatch, src)
    served_file = tmp_path / "served.tar.gz"
    members = [(f"cifar-10-batches-py/{n}", (src / n).read_bytes()) for n in CIFAR_NAMES]
    make_tar(served_file, members)
    blob = served_file.read_bytes()
    trust(monkeypatch, "cifar10", "cifar-10-python.tar.gz", file=[md5(blob)])
    served = []

    def fake_urlopen(url, *args, **kwargs):
        served.append(url)
        return io.BytesIO(blob)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    root = tmp_path / "cache" / "c"
    _, y = data.cifar10(root, split="test")
    assert served == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert np.array_equal(y, batches["test_batch"]["labels"])
    assert (root / "cifar-10-python.tar.gz").read_bytes() == blob
    assert sorted(p.name for p in root.iterdir()) == [
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
    ]


def test_cifar_download_bad_copy_is_not_kept(tmp_path, monkeypatch):
    bad = b"not an archive"
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, *a, **k: io.BytesIO(bad))
    root = tmp_path / "c"
    with pytest.raises(data.DownloadError) as exc:
        data.cifar10(root, split="test")
    msg = str(exc.value)
    assert "served a file that failed verification" in msg and "checksum mismatch" in msg
    assert str(root / "cifar-10-python.tar.gz") in msg
    assert "c58f30108f718f92721af3b95e74349a" in msg  # the official md5
    assert md5(bad) in msg and sha256(bad) in msg
    assert not root.exists()  # nothing left: not even the folder the call created
