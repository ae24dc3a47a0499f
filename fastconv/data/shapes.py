"""The built-in "shapes" set: ten classes of procedurally drawn line figures, no download.

Each image is one anti-aliased figure (:data:`SHAPES_CLASSES`) drawn from a
distance field, with random position, extent, small rotation, stroke width and
brightness, plus Gaussian pixel noise. Everything is drawn from one NumPy
Generator in a fixed order, so a seed always gives the same images.
"""

from __future__ import annotations

import numpy as np

from .._args import as_float, as_int, make_rng, spawn_seeds

SHAPES_CLASSES = (
    "horizontal line",
    "vertical line",
    "diagonal line",
    "corner",
    "circle",
    "rectangle",
    "plus",
    "cross",
    "triangle",
    "arc",
)


def _seg_dist(px, py, ax, ay, bx, by):
    """Distance from pixel centres (px, py) (shape (1, S, S)) to segments a-b (each (B, 1, 1))."""
    dx, dy = bx - ax, by - ay
    len2 = np.maximum(dx * dx + dy * dy, 1e-12)
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / len2, 0.0, 1.0)
    ex, ey = px - (ax + t * dx), py - (ay + t * dy)
    return np.sqrt(ex * ex + ey * ey)


def _polyline_dist(px, py, cx, cy, pts, angle):
    """Distance to a polyline given in local coords ``pts`` (B, K, 2), rotated by ``angle`` about (cx, cy)."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = cx[:, None] + c * pts[..., 0] - s * pts[..., 1]
    y = cy[:, None] + s * pts[..., 0] + c * pts[..., 1]
    d = None
    for k in range(pts.shape[1] - 1):
        dk = _seg_dist(
            px,
            py,
            *(v[:, k, None, None] for v in (x, y)),
            *(v[:, k + 1, None, None] for v in (x, y)),
        )
        d = dk if d is None else np.minimum(d, dk)
    return d


def _segments_dist(px, py, cx, cy, segs, angle):
    """Distance to independent segments ``segs`` (B, K, 2, 2) in local coords."""
    d = None
    for k in range(segs.shape[1]):
        dk = _polyline_dist(px, py, cx, cy, segs[:, k], angle)
        d = dk if d is None else np.minimum(d, dk)
    return d


def _draw_class(label, B, size, rng, px, py):
    """Distance field (B, size, size) of ``B`` random figures of class ``label``."""
    S = float(size)
    u = rng.uniform
    jitter = np.deg2rad(u(-10.0, 10.0, B))
    # Overall extent of each figure, then a centre that keeps it inside the image.
    if label in (0, 1, 2):
        ext = u(0.45, 0.85, B) * S
    elif label == 9:
        ext = u(0.5, 0.8, B) * S
    else:
        ext = u(0.4, 0.75, B) * S
    half = ext / 2.0
    margin = 1.5 + half * (1.42 if label in (2, 3, 7, 8) else 1.0)
    margin = np.minimum(margin, S / 2.0 - 0.5)
    cx = u(0.0, 1.0, B) * (S - 1 - 2 * margin) + margin
    cy = u(0.0, 1.0, B) * (S - 1 - 2 * margin) + margin
    zeros = np.zeros(B)
    if label in (0, 1, 2):  # a straight line through the centre
        base = {0: 0.0, 1: np.pi / 2, 2: np.pi / 4}[label]
        angle = base + jitter
        if label == 2:
            angle = angle + (rng.random(B) < 0.5) * (np.pi / 2)
        pts = np.stack([np.stack([-half, zeros], 1), np.stack([half, zeros], 1)], 1)
        return _polyline_dist(px, py, cx, cy, pts, angle)
    if label == 3:  # corner: two arms at a right angle, four orientations
        a1 = half * u(0.7, 1.0, B)
        a2 = half * u(0.7, 1.0, B)
        pts = np.stack([np.stack([a1, -a2], 1), np.stack([-a1, -a2], 1), np.stack([-a1, a2], 1)], 1)
        angle = rng.integers(0, 4, B) * (np.pi / 2) + jitter
        return _polyline_dist(px, py, cx, cy, pts, angle)
    if label == 4:  # circle (ring)
        r = half
        return np.abs(np.hypot(px - cx[:, None, None], py - cy[:, None, None]) - r[:, None, None])
    if label == 5:  # rectangle outline, either orientation
        w = half
        h = half * u(0.45, 0.8, B)
        swap = rng.random(B) < 0.5
        w, h = np.where(swap, h, w), np.where(swap, w, h)
        pts = np.stack(
            [
                np.stack([-w, -h], 1),
                np.stack([w, -h], 1),
                np.stack([w, h], 1),
                np.stack([-w, h], 1),
                np.stack([-w, -h], 1),
            ],
            1,
        )
        return _polyline_dist(px, py, cx, cy, pts, jitter)
    if label in (6, 7):  # plus / diagonal cross: two crossing strokes
        l1 = half * u(0.8, 1.0, B)
        l2 = half * u(0.8, 1.0, B)
        segs = np.stack(
            [
                np.stack([np.stack([-l1, zeros], 1), np.stack([l1, zeros], 1)], 1),
                np.stack([np.stack([zeros, -l2], 1), np.stack([zeros, l2], 1)], 1),
            ],
            1,
        )
        angle = jitter + (np.pi / 4 if label == 7 else 0.0)
        return _segments_dist(px, py, cx, cy, segs, angle)
    if label == 8:  # triangle outline, any rotation
        phi = u(0.0, 2 * np.pi, B)[:, None] + np.array(
            [0.0, 2 * np.pi / 3, 4 * np.pi / 3, 2 * np.pi]
        )
        rad = half[:, None] * u(0.85, 1.0, (B, 4))
        rad[:, 3] = rad[:, 0]
        pts = np.stack([rad * np.cos(phi), rad * np.sin(phi)], -1)
        return _polyline_dist(px, py, cx, cy, pts, zeros)
    # label 9: arc of a circle spanning 150 to 250 degrees
    r = half[:, None, None]
    start = u(0.0, 2 * np.pi, B)[:, None, None]
    span = np.deg2rad(u(150.0, 250.0, B))[:, None, None]
    ccx, ccy = cx[:, None, None], cy[:, None, None]
    theta = np.mod(np.arctan2(py - ccy, px - ccx) - start, 2 * np.pi)
    on_arc = np.abs(np.hypot(px - ccx, py - ccy) - r)
    e0 = np.hypot(px - (ccx + r * np.cos(start)), py - (ccy + r * np.sin(start)))
    e1 = np.hypot(px - (ccx + r * np.cos(start + span)), py - (ccy + r * np.sin(start + span)))
    return np.where(theta <= span, on_arc, np.minimum(e0, e1))


def _shapes(n, rng, size, noise):
    n = int(n)
    counts = [n // 10 + (1 if c < n % 10 else 0) for c in range(10)]
    X = np.empty((n, 1, size, size), dtype=np.float32)
    y = np.empty(n, dtype=np.int64)
    coords = np.arange(size, dtype=np.float64)
    px, py = coords[None, None, :], coords[None, :, None]
    start = 0
    for label, B in enumerate(counts):
        if B == 0:
            continue
        d = _draw_class(label, B, size, rng, px, py)
        thick = rng.uniform(0.9, 2.4, B)[:, None, None] * (size / 28.0)
        bright = rng.uniform(0.6, 1.0, B)[:, None, None]
        # Anti-aliased stroke: full inside half the thickness, a one-pixel linear ramp outside.
        img = np.clip(thick / 2.0 + 0.5 - d, 0.0, 1.0) * bright
        X[start : start + B, 0] = img
        y[start : start + B] = label
        start += B
    if noise > 0:
        X += rng.normal(0.0, noise, X.shape).astype(np.float32)
        np.clip(X, 0.0, 1.0, out=X)
    order = rng.permutation(n)
    return np.ascontiguousarray(X[order]), y[order]


def _check_shapes_args(n, size, noise):
    return as_int(n, "n", 0), as_int(size, "size", 12), as_float(noise, "noise", 0)


def shapes(n=6000, seed=0, size=28, noise=0.1):
    """A built-in 10-class image set of line figures, generated on the fly (no download).

    Returns ``(X, y)``: X float32 (n, 1, size, size) in [0, 1], y int64 in
    0..9 (names in :data:`SHAPES_CLASSES`: horizontal, vertical and diagonal
    lines, corner, circle, rectangle, plus, diagonal cross, triangle, arc).
    Each figure has a random position, extent, small rotation, stroke width
    and brightness, drawn anti-aliased with additive Gaussian pixel noise of
    standard deviation ``noise``. Classes are balanced (they differ by at
    most one image) and the order is shuffled. The same ``seed`` (an int >= 0
    or a SeedSequence; None for fresh entropy; a Generator is drawn from) gives
    the same images.
    """
    n, size, noise = _check_shapes_args(n, size, noise)
    return _shapes(n, make_rng(seed, "seed"), size, noise)


def shapes_split(n_train=6000, n_test=1000, seed=0, size=28, noise=0.1):
    """``((X_train, y_train), (X_test, y_test))`` from :func:`shapes`, drawn from two
    independent random streams spawned from ``seed`` (so the two sets never share images)."""
    n_train, size, noise = _check_shapes_args(n_train, size, noise)
    n_test, _, _ = _check_shapes_args(n_test, size, noise)
    ss_train, ss_test = spawn_seeds(seed, 2)
    train = _shapes(n_train, np.random.default_rng(ss_train), size, noise)
    test = _shapes(n_test, np.random.default_rng(ss_test), size, noise)
    return train, test

