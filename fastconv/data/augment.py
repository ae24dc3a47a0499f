"""Data augmentation in NumPy: flips, shifts, crops, noise and the :class:`Augment` chain.

Every function takes a float (N, C, H, W) batch and an ``rng`` (a Generator,
an int seed, a SeedSequence or None), returns a new array and never writes to
its input.
"""

from __future__ import annotations

import numpy as np

from .._args import as_float, check_array, make_rng, pair


def random_flip(X, rng=None, horizontal=True, vertical=False, p=0.5):
    """Mirror each image left-right (``horizontal``) and/or top-bottom (``vertical``),
    each independently with probability ``p``. ``X`` (N, C, H, W) float; returns a new array."""
    X = check_array(X, "X", ndim=4)
    p = as_float(p, "p", 0, 1)
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
    std = as_float(std, "std", 0)
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
        self.p = as_float(p, "p", 0, 1)
        self.hflip, self.vflip = bool(hflip), bool(vflip)
        self.shift = pair(shift, "shift", minimum=0)
        self.crop = None if crop is None else pair(crop, "crop")
        self.padding = pair(padding, "padding", minimum=0)
        self.noise = as_float(noise, "noise", 0)
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
