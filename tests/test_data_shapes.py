"""Tests of the built-in shapes set of fastconv.data and of load() by name."""

from __future__ import annotations

import numpy as np
import pytest

# offline: an autouse fixture, imported to apply here (no test touches the network)
from test_data_common import offline, small_mnist, write_split  # noqa: F401

from fastconv import data

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


def test_shapes_pinned_output():
    """The images are a function of the seed alone: labels and pixel sums pinned from the
    generator as first written (sums to float tolerance, as libm may differ in the last bit)."""
    X, y = data.shapes(30, seed=0)
    assert y.tolist() == [2, 5, 6, 0, 2, 1, 0, 5, 9, 9, 9, 7, 4, 8, 1, 3, 8, 6, 7, 0,
                          6, 7, 4, 2, 5, 8, 3, 1, 3, 4]  # fmt: skip
    assert X.astype(np.float64).sum() == pytest.approx(2141.133363, rel=1e-6)
    assert (X.astype(np.float64) ** 2).sum() == pytest.approx(981.003271, rel=1e-6)
    X0, _ = data.shapes(30, seed=0, noise=0.0)
    assert X0.astype(np.float64).sum() == pytest.approx(1301.622702, rel=1e-6)
    (Xa, ya), (Xb, yb) = data.shapes_split(20, 10, seed=3)
    assert ya.tolist() == [6, 8, 1, 1, 2, 2, 7, 5, 3, 7, 6, 3, 9, 4, 0, 9, 0, 4, 8, 5]
    assert yb.tolist() == [7, 5, 4, 0, 6, 3, 2, 1, 8, 9]
    assert Xa.astype(np.float64).sum() == pytest.approx(1322.364404, rel=1e-6)
    assert Xb.astype(np.float64).sum() == pytest.approx(658.668881, rel=1e-6)


def test_shapes_seed_kinds():
    X, y = data.shapes(50, seed=4)
    for seed in (np.int64(4), np.random.SeedSequence(4), np.random.default_rng(4)):
        X2, y2 = data.shapes(50, seed=seed)
        assert np.array_equal(X, X2) and np.array_equal(y, y2)
    (a, _), (b, _) = data.shapes_split(30, 20, seed=4)
    (a2, _), (b2, _) = data.shapes_split(30, 20, seed=np.random.SeedSequence(4))
    assert np.array_equal(a, a2) and np.array_equal(b, b2)
    (a3, _), _ = data.shapes_split(30, 20, seed=np.random.default_rng(4))  # drawn from it
    assert a3.shape == a.shape
    with pytest.raises(TypeError, match="seed must be"):
        data.shapes(10, seed="4")


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
