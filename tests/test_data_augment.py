"""Tests of fastconv.data's augmentation: flips, shifts, crops, noise and Augment."""

from __future__ import annotations

import numpy as np
import pytest

from fastconv import data

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
