"""Self-test: every native kernel against :mod:`fastconv.reference` (``fastconv check``).

::

    from fastconv import selftest
    results = selftest.run_checks(seed=0, cases=50)
    failed = [r.op for r in results if not r.ok]

Each op (convolution forward and backward for each algorithm, max and average
pooling forward and backward, im2col, col2im, ReLU forward and backward, the
fully connected layer forward and backward, on fastconv's own GEMM) runs
on ``cases`` random valid geometries per dtype (float32 and float64) and is
compared with the reference; the result is the worst error per op and dtype,
relative to the reference's largest magnitude (:func:`rel_err`). A kernel that
raises counts as a failure (its first error message is kept), except a
convolution algorithm refusing a geometry it does not handle (a ValueError
naming ``algo=...``), which is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import functional as F
from . import reference as R
from ._args import as_int, conv_params, pool_params

__all__ = ["TOLERANCE", "OpResult", "rel_err", "run_checks"]

#: Largest allowed worst-case error, per dtype (relative to the reference's magnitude).
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}


@dataclass(frozen=True)
class OpResult:
    """The outcome of one op: ``errors`` {dtype name: worst relative error} (a dtype is
    missing when no case applied to it), ``crash``: the first exception a kernel raised
    ("Type: message") or None, and ``ok``: every error within the tolerance."""

    op: str
    errors: dict
    crash: str | None
    ok: bool


def _one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def rel_err(got, want):
    """max |got - want| / max(1, max |want|); inf when the shapes differ or got is missing.

    Integer arrays (max-pooling indices) must be equal (0.0, else inf); NaN where
    the reference has NaN counts as equal."""
    if got is None or want is None:
        return 0.0 if got is None and want is None else float("inf")
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return float("inf")
    if want.size == 0:
        return 0.0
    if want.dtype.kind in "iu":
        return 0.0 if np.array_equal(got, want) else float("inf")
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    both_nan = np.isnan(got) & np.isnan(want)
    diff[both_nan] = 0.0
    if np.isnan(diff).any():
        return float("inf")
    scale = max(1.0, float(np.max(np.abs(np.nan_to_num(want.astype(np.float64))))))
    return float(diff.max()) / scale


def _conv_case(rng, common=False):
    """Random valid convolution arguments (shapes, stride, padding, dilation, groups).

    ``common``: a 3x3 kernel with stride 1 and dilation 1, the shape that
    specialised algorithms (Winograd) are restricted to.
    """
    while True:
        groups = int(rng.choice([1, 1, 1, 2, 3]))
        C = groups * int(rng.integers(1, 4))
        K = groups * int(rng.integers(1, 4))
        N = int(rng.integers(1, 4))
        H, W = (int(v) for v in rng.integers(3, 13, 2))
        R_, S_ = (int(v) for v in rng.integers(1, 5, 2))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 3)))
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        if common:
            R_ = S_ = 3
            stride = dilation = (1, 1)
            padding = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
        try:
            p = conv_params((N, C, H, W), (K, C // groups, R_, S_), stride, padding, dilation, groups)
        except ValueError:
            continue
        return dict(x_shape=(N, C, H, W), w_shape=(K, C // groups, R_, S_), y_shape=(N, K, p.P, p.Q),
                    kw=dict(stride=stride, padding=padding, dilation=dilation, groups=groups))


def _pool_case(rng, max_pool):
    """Random valid pooling arguments: (input shape, keyword arguments)."""
    while True:
        N, C = int(rng.integers(1, 3)), int(rng.integers(1, 4))
        H, W = (int(v) for v in rng.integers(2, 12, 2))
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        pad = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        ceil_mode = bool(rng.integers(0, 2))
        kw = dict(kernel_size=k, stride=s, padding=pad, ceil_mode=ceil_mode)
        if max_pool:
            kw["dilation"] = (int(rng.integers(1, 3)), 1)
        else:
            kw["count_include_pad"] = bool(rng.integers(0, 2))
        try:
            pool_params((N, C, H, W), k, s, pad, kw.get("dilation", 1), ceil_mode)
        except ValueError:
            continue
        return (N, C, H, W), kw


class _Recorder:
    """Worst error per op and dtype, and the first crash of each op, in first-run order."""

    def __init__(self):
        self.worst = {}
        self.crashed = {}

    def run(self, op, dt, fn, algo=None):
        slot = self.worst.setdefault(op, {})
        try:
            err = fn()
        except ValueError as exc:
            if algo is not None and f"algo={algo!r}" in str(exc):
                return  # this algorithm does not handle this geometry (and says so): not a failure
            self.crashed.setdefault(op, f"ValueError: {_one_line(exc)}")
            err = float("inf")
        except Exception as exc:  # a native kernel that raises is a failure, not a crash of check
            self.crashed.setdefault(op, f"{type(exc).__name__}: {_one_line(exc)}")
            err = float("inf")
        slot[dt] = max(slot.get(dt, 0.0), err)


def _check_dtype(rec, dtype, seed, cases, algos):
    dt = np.dtype(dtype).name
    rng = np.random.default_rng([seed, 32 if dtype is np.float32 else 64])
    run = rec.run

    def rand(shape):
        return rng.standard_normal(shape).astype(dtype)

    for case in range(cases):
        c = _conv_case(rng, common=case % 2 == 1)
        x, w, b, dy = rand(c["x_shape"]), rand(c["w_shape"]), rand(c["w_shape"][0]), rand(c["y_shape"])
        kw = c["kw"]
        want_y = R.conv2d(x, w, b, **kw)
        want_g = R.conv2d_backward(dy, x, w, **kw)
        for algo in algos:
            run(f"conv2d [{algo}]", dt,
                lambda: rel_err(F.conv2d(x, w, b, algo=algo, **kw), want_y), algo)
            run(f"conv2d_backward [{algo}]", dt,
                lambda: max(rel_err(g, r) for g, r in
                            zip(F.conv2d_backward(dy, x, w, algo=algo, **kw), want_g)), algo)

        R_, S_ = c["w_shape"][2:]
        ukw = dict(stride=kw["stride"], padding=kw["padding"], dilation=kw["dilation"])
        hw = c["x_shape"][2:]
        want_cols = R.im2col(x, (R_, S_), **ukw)
        run("im2col", dt, lambda: rel_err(F.im2col(x, (R_, S_), **ukw), want_cols))
        cols = rand(want_cols.shape)
        run("col2im", dt, lambda: rel_err(F.col2im(cols, hw, (R_, S_), **ukw),
                                          R.col2im(cols, hw, (R_, S_), **ukw)))

        shape, pkw = _pool_case(rng, max_pool=True)
        xp = rand(shape)
        want, want_idx = R.max_pool2d(xp, return_indices=True, **pkw)

        def max_fwd():
            got, idx = F.max_pool2d(xp, return_indices=True, **pkw)
            return max(rel_err(got, want), rel_err(idx, want_idx))

        run("max_pool2d", dt, max_fwd)
        dyp = rand(want.shape)
        run("max_pool2d_backward", dt,
            lambda: rel_err(F.max_pool2d_backward(dyp, want_idx, shape),
                            R.max_pool2d_backward(dyp, want_idx, shape)))

        shape, akw = _pool_case(rng, max_pool=False)
        xa = rand(shape)
        want = R.avg_pool2d(xa, **akw)
        run("avg_pool2d", dt, lambda: rel_err(F.avg_pool2d(xa, **akw), want))
        dya = rand(want.shape)
        run("avg_pool2d_backward", dt,
            lambda: rel_err(F.avg_pool2d_backward(dya, shape, **akw),
                            R.avg_pool2d_backward(dya, shape, **akw)))

        xr = rand((int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 9)),
                   int(rng.integers(1, 9))))
        xr[rng.random(xr.shape) < 0.1] = 0
        dyr = rand(xr.shape)
        run("relu", dt, lambda: rel_err(F.relu(xr), R.relu(xr)))
        run("relu_backward", dt, lambda: rel_err(F.relu_backward(dyr, xr), R.relu_backward(dyr, xr)))

        # fully connected: fastconv's own GEMM; every fourth case larger than its blocks
        hi = (160, 320, 160) if case % 4 == 3 else (20, 40, 20)
        n, fin, fout = (int(rng.integers(1, h + 1)) for h in hi)
        xl, wl, bl, dyl = rand((n, fin)), rand((fout, fin)), rand(fout), rand((n, fout))
        need_dx, need_db = bool(rng.integers(0, 4)), bool(rng.integers(0, 4))
        run("linear", dt, lambda: rel_err(F.linear(xl, wl, bl), R.linear(xl, wl, bl)))
        want_l = R.linear_backward(dyl, xl, wl, need_dx=need_dx, need_db=need_db)
        run("linear_backward", dt,
            lambda: max(rel_err(g, r) for g, r in
                        zip(F.linear_backward(dyl, xl, wl, need_dx=need_dx, need_db=need_db), want_l)))


def run_checks(seed=0, cases=50, tolerance=None):
    """Run every native kernel on ``cases`` random geometries per dtype against the
    reference; returns one :class:`OpResult` per op, in the order the ops were run.

    ``seed``: an int >= 0 (the same seed gives the same cases); ``tolerance``:
    {dtype name: largest allowed error}, default :data:`TOLERANCE`. The kernels
    run at fastconv's current thread count.
    """
    seed = as_int(seed, "seed", minimum=0)
    cases = as_int(cases, "cases", minimum=1)
    tol = dict(TOLERANCE if tolerance is None else tolerance)
    algos = [a for a in F.ALGOS if a != "auto"]
    rec = _Recorder()
    for dtype in (np.float32, np.float64):
        _check_dtype(rec, dtype, seed, cases, algos)
    return [
        OpResult(op, dict(errs), rec.crashed.get(op),
                 all(errs.get(dt, 0.0) <= limit for dt, limit in tol.items()))
        for op, errs in rec.worst.items()
    ]
