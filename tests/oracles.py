"""Exact oracles and tolerances derived from the arithmetic, for results that are sums.

A convolution or matrix product computed in floating point sums D products a*b. Each
rounding changes a partial sum by at most u relative (u, the unit roundoff: 2**-24 in
float32, 2**-53 in float64), and every partial sum is at most the sum of the absolute
values of the terms, M = sum |a|*|b|. Independent roundings add like a random walk, so,
in any order of summation (sequential, blocked, pairwise, FMA or not), the error of one
output element is a small multiple of u * sqrt(D) * M:

    |got - exact| <= c * u * sqrt(D) * M                                       (1)

The exact value and M come from the float64 reference applied to the very inputs (cast
from float32 exactly) and to their absolute values. Nothing scales with max|result| and
nothing with D itself, so an element that sums few or small terms is held to its own,
tight bound. c = C_SUM = 4 covers the summation orders of every algorithm here (worst
seen: 1.6); for float64 results the oracle rounds as much as the result does, so the
bound doubles. Winograd's transforms mix the elements of a tile before they are summed,
so its error follows the tile's magnitude, not each element's: there M is the largest
M of each image plane or kernel (``spread=True``) and c = C_WINOGRAD (worst seen: 8.4
in float32, 14 in float64). For y and dx the bound also holds a term that does not lean
on any element's own terms, since a transform mixes every tap with every input of its
tile:

    |got - exact| <= c * u * (sqrt(D) * M_plane + T),
    T = sum over input channels of max|input| (plane) * sum|w| (taps) (+ |b|)     (2)

(found by the fuzz tests: a 1x1 input meeting only a zero centre tap has M = 0, yet
F(4x4, 3x3)'s transformed kernel rounds).

Every comparison also proves its own strength: ``check`` asserts that the same
tolerance rejects the exact result scaled by 1 + 1e-3 and the exact result with only
its largest element scaled by 1 + 1e-3. A tolerance too loose to see a 0.1% error fails
the test that uses it. The one exception is a result made of nothing but cancellation
(every element at least KAPPA times smaller than the sum of its terms' magnitudes,
e.g. the single bias gradient of a one-channel layer): there a correctly rounded
result can itself be 0.1% off, and no sound tolerance can tell. The fixed case lists
(tests/test_gemm.py) assert the rejection unconditionally.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fastconv import reference as ref

UNIT = {np.dtype(np.float32): 2.0**-24, np.dtype(np.float64): 2.0**-53}
C_SUM = 4.0
C_WINOGRAD = 32.0
REL = 1e-3
KAPPA = 100.0


class Exact(NamedTuple):
    """The exact result of a sum (float64), the sum of the absolute values of its terms
    (elementwise), and the most terms any element sums."""

    want: np.ndarray
    mag: np.ndarray
    depth: int
    tile: np.ndarray | None = None      # Winograd's bound (2), where one is known


def f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def a64(a):
    return None if a is None else np.abs(np.asarray(a, dtype=np.float64))


def tolerance(exact, dtype, c=C_SUM, spread=False):
    """The elementwise bound (1) for a result computed in ``dtype``."""
    dtype = np.dtype(dtype)
    c = c * (2.0 if dtype == np.float64 else 1.0)
    mag = exact.mag
    if spread and mag.size:
        # the largest magnitude of each image plane (y, dx) or kernel (dw)
        mag = np.broadcast_to(mag.max(axis=(-2, -1) if mag.ndim >= 2 else None, keepdims=True),
                              mag.shape)
    tol = c * UNIT[dtype] * np.sqrt(max(exact.depth, 1)) * mag
    if spread and exact.tile is not None:
        tol = tol + c * UNIT[dtype] * exact.tile
    return tol


def _excess(got, exact, tol):
    """(worst |got - want| / tol, its index); inf where tol is 0 and got != want."""
    err = np.abs(np.asarray(got, np.float64) - exact.want)
    if err.size == 0:
        return 0.0, None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0, 0.0, err / tol)
    ratio = np.where(np.isnan(err), np.inf, ratio)
    i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    return float(ratio[i]), i


def within(got, exact, dtype, c=C_SUM, spread=False):
    return _excess(got, exact, tolerance(exact, dtype, c, spread))[0] <= 1.0


def assert_rounding_close(got, exact, dtype, c=C_SUM, spread=False, what="result"):
    """``got`` (computed in ``dtype``) is ``exact`` up to the rounding bound (1)."""
    assert got is not None, f"{what} is None"
    assert got.shape == exact.want.shape, f"{what}: shape {got.shape}, want {exact.want.shape}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype}, want {np.dtype(dtype)}"
    tol = tolerance(exact, dtype, c, spread)
    worst, i = _excess(got, exact, tol)
    if worst > 1.0:
        raise AssertionError(
            f"{what} differs from the exact result by more than rounding explains: at {i} got "
            f"{float(got[i])!r}, exact {float(exact.want[i])!r}, error "
            f"{abs(float(got[i]) - float(exact.want[i])):.3g} = {worst:.3g} x the tolerance "
            f"{float(tol[i]):.3g} (c={c}, u={UNIT[np.dtype(dtype)]:.3g}, sqrt(depth="
            f"{exact.depth}), magnitude {float(exact.mag[i]):.3g})")


def assert_tolerance_rejects(exact, dtype, c=C_SUM, spread=False, rel=REL, what="result"):
    """The tolerance used for ``exact`` is tight enough to see a relative error ``rel``:
    of the whole result, and of its largest element alone."""
    want = exact.want
    if want.size == 0 or not np.any(want):
        return                      # nothing a relative error could change
    scaled = want * (1 + rel)
    one = want.copy()
    i = np.unravel_index(int(np.argmax(np.abs(want))), want.shape)
    one[i] *= 1 + rel
    for name, wrong in (("every element", scaled), (f"element {i}", one)):
        assert not within(wrong, exact, dtype, c, spread), (
            f"{what}: the tolerance would accept a {rel:g} relative error of {name} "
            f"(dtype {np.dtype(dtype).name}, depth {exact.depth})")


def cancellation_only(exact):
    """True when every element of the exact result is KAPPA times smaller than the sum
    of the magnitudes of its terms (or the result is empty or zero)."""
    return not np.any(np.abs(exact.want) * KAPPA >= exact.mag) or not np.any(exact.want)


def check(got, exact, dtype, c=C_SUM, spread=False, what="result"):
    """assert_rounding_close, and proof that its tolerance rejects a 1e-3 relative error
    (unless the result is nothing but cancellation: see the module's docstring)."""
    assert_rounding_close(got, exact, dtype, c, spread, what)
    if not cancellation_only(exact):
        assert_tolerance_rejects(exact, dtype, c, spread, what=what)


# ---- oracles -----------------------------------------------------------------------


def conv_exact(x, w, b=None, dy=None, **kw):
    """Exact forward (key "y") and, with dy, gradients ("dx", "dw", "db") of a convolution:
    fastconv.reference in float64 on the inputs and on their absolute values."""
    g = _geometry(x.shape, w.shape, **kw)
    y_tile = _tile_bound(x, w, b, kw.get("groups", 1), False)
    out = {"y": Exact(ref.conv2d(f64(x), f64(w), f64(b), **kw),
                      ref.conv2d(a64(x), a64(w), a64(b), **kw),
                      g["Cg"] * g["R"] * g["S"] + (b is not None), y_tile)}
    if dy is not None:
        want = ref.conv2d_backward(f64(dy), f64(x), f64(w), **kw)
        mag = ref.conv2d_backward(a64(dy), a64(x), a64(w), **kw)
        npq = dy.shape[0] * dy.shape[2] * dy.shape[3]
        tiles = (_tile_bound(dy, w, None, kw.get("groups", 1), True), None, None)
        for name, wv, mv, depth, tile in zip(("dx", "dw", "db"), want, mag,
                                             (g["Kg"] * g["R"] * g["S"], npq, npq), tiles):
            out[name] = Exact(wv, mv, depth, tile)
    return out


def _tile_bound(a, w, b, groups, transposed):
    """Winograd's bound (2) for each (image, output channel) plane of a convolution of
    ``a`` with ``w`` (``transposed``: of dy with w's transpose, i.e. dx), broadcast over the
    plane: the sum over input channels of max|a| over the plane times sum|w| over the
    taps (+ |b|). A transform mixes every tap with every input of a tile, so an element
    whose own terms are all zero can still carry rounding of that size (e.g. a 1x1 input
    that meets only a zero centre tap)."""
    if a.ndim != 4 or w.ndim != 4 or a.shape[0] == 0:
        return None
    amax = np.abs(np.asarray(a, np.float64)).max(axis=(2, 3), initial=0.0)   # (N, planes)
    wsum = np.abs(np.asarray(w, np.float64)).sum(axis=(2, 3))              # (K, Cg)
    K, Cg = wsum.shape
    Kg = K // groups
    if transposed:      # dx (N, C): over the group's K output channels of dy
        parts = [amax[:, gi * Kg:(gi + 1) * Kg] @ wsum[gi * Kg:(gi + 1) * Kg]
                 for gi in range(groups)]
    else:               # y (N, K): over the group's Cg input channels of x
        parts = [amax[:, gi * Cg:(gi + 1) * Cg] @ wsum[gi * Kg:(gi + 1) * Kg].T
                 for gi in range(groups)]
    bound = np.concatenate(parts, axis=1)
    if b is not None:
        bound = bound + np.abs(np.asarray(b, np.float64))
    return bound[:, :, None, None]


def _geometry(x_shape, w_shape, groups=1, **_):
    K, Cg, R, S = w_shape
    return dict(Cg=Cg, Kg=K // groups, R=R, S=S)


def matmul_exact(a, b, trans_a=False, trans_b=False):
    """Exact op(a) @ op(b) with float64 einsum, and |op(a)| @ |op(b)|."""
    sa = "ki" if trans_a else "ik"
    sb = "jk" if trans_b else "kj"
    spec = f"{sa},{sb}->ij"
    depth = a.shape[0] if trans_a else a.shape[1]
    return Exact(np.einsum(spec, f64(a), f64(b)), np.einsum(spec, a64(a), a64(b)), depth)


def check_conv(got, exact, dtype, winograd=False, what=""):
    """``got``: a dict of results named like ``exact``'s keys ("y", "dx", "dw", "db");
    None values (gradients not asked for) are skipped. ``winograd``: y, dx and dw came
    from the Winograd transforms (the bias gradient is a plain sum either way)."""
    for name, value in got.items():
        if value is None:
            continue
        wino = winograd and name != "db"
        check(value, exact[name], dtype, C_WINOGRAD if wino else C_SUM, spread=wino,
              what=f"{what} {name}".strip())


def grads(result):
    """conv2d_backward's (dx, dw, db) as a dict for check_conv."""
    return dict(zip(("dx", "dw", "db"), result))
