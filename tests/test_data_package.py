"""Tests of the fastconv.data package itself: its public names and its imports."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from fastconv import data

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


# ---------------------------------------------------------------------------
# public names
# ---------------------------------------------------------------------------

#: fastconv.data's public names before it became a package: every one must stay.
PUBLIC = [
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


def test_public_names_are_reexported():
    assert set(PUBLIC) <= set(data.__all__)
    for name in data.__all__:
        assert getattr(data, name) is not None, name
    # where each lives; mnist and shapes are the functions, not the submodules of that name
    for module, names in {
        "download": ["CHECKSUMS", "MIRRORS", "DownloadError", "default_root"],
        "mnist": ["MNIST_CLASSES", "FASHION_MNIST_CLASSES", "mnist", "fashion_mnist", "read_idx"],
        "cifar": ["CIFAR10_CLASSES", "cifar10"],
        "shapes": ["SHAPES_CLASSES", "shapes", "shapes_split"],
        "augment": ["Augment", "add_noise", "random_crop", "random_flip", "random_shift"],
    }.items():
        mod = importlib.import_module(f"fastconv.data.{module}")
        for name in names:
            assert getattr(data, name) is getattr(mod, name), (module, name)
    assert callable(data.mnist) and callable(data.shapes)
    assert issubclass(data.DownloadError, ConnectionError)
    assert data.DATASETS == ("mnist", "fashion_mnist", "cifar10", "shapes")


def test_modules_stay_small():
    for path in Path(data.__file__).parent.glob("*.py"):
        n = len(path.read_text().splitlines())
        assert n < 600, f"{path.name} has {n} lines: split it by concern"
