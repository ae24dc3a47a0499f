"""The comparison runner behind ``fastconv bench`` (also ``python -m fastconv.bench``).

It times, side by side in one process and one run, fastconv against a good
plain-NumPy implementation (:mod:`fastconv._numpy_baseline`) and against
PyTorch's CPU kernels when ``torch`` can be imported, on the layer set of
``benchmark_layers.md``:

* ``conv`` cases: forward, and forward + backward (backward-data,
  backward-weight and bias gradient), for fastconv's ``algo="auto"`` and, when
  one call is cheap enough, each of its algorithms forced (``im2col``,
  ``direct``, ``gemm``, ``winograd``: whatever ``fastconv.functional.ALGOS`` lists);
  reported as milliseconds, GFLOP/s (forward FLOPs = 2 N K (C/groups) R S P Q,
  backward twice that) and as a fraction of the machine's matrix-multiply peak;
* ``pool`` cases: max and average pooling, forward and forward + backward;
* ``train`` cases: one SGD-with-momentum step of ``lenet5`` / ``vgg_small``
  (batch 64, softmax cross-entropy) as images per second.

The machine's peak is NumPy's float32 2048 x 2048 ``matmul`` rate, measured in
the same run for each thread count (the best sample, taken before and after
that thread count's cases). For each thread count ``t`` fastconv runs
with ``fastconv.set_num_threads(t)``, NumPy's BLAS with ``t`` threads (through
``threadpoolctl`` when it is installed) and PyTorch with
``torch.set_num_threads(t)``.

Timing: every implementation is called once to warm up, then calibrated to a
number of calls per sample (so a sample lasts at least ``min_time``), then
sampled ``repeat`` times in a row (steady state: warm caches, thread pools
awake); the figure is the median per-call time. The implementations of one
case are measured one after the other within seconds. With ``interleave``
the samples are instead taken round-robin over the implementations, which
spreads slow drifts of a shared machine's load evenly but starts every sample
cold (on the 2-core development VM that made every library's 2-thread
figures up to 2-3x slower). Absolute times on a shared machine are noise;
the ratios of one run are the result. Speedups are
``other_time / fastconv_time``: above 1 means fastconv is faster.

No timing is asserted anywhere; this module only measures and reports.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

import fastconv

from . import _numpy_baseline as npb

__all__ = [
    "CONV_CASES",
    "POOL_CASES",
    "TRAIN_CASES",
    "select_cases",
    "conv_algos",
    "auto_algo",
    "algo_applies",
    "conv_impls",
    "pool_impls",
    "train_impls",
    "run",
    "format_table",
    "environment",
    "add_parser",
    "main",
]

# ---------------------------------------------------------------- the layer set

#: name -> (N, C, H, W, K, R, S, stride, pad, groups); benchmark_layers.md.
CONV_CASES = {
    "lenet_c1": (64, 1, 28, 28, 20, 5, 5, 1, 0, 1),
    "lenet_c2": (64, 20, 12, 12, 50, 5, 5, 1, 0, 1),
    "cifar_c1": (32, 3, 32, 32, 32, 3, 3, 1, 1, 1),
    "cifar_c2": (32, 32, 32, 32, 64, 3, 3, 1, 1, 1),
    "resnet_stem": (8, 3, 224, 224, 64, 7, 7, 2, 3, 1),
    "resnet_3x3": (8, 64, 56, 56, 64, 3, 3, 1, 1, 1),
    "resnet_3x3s2": (8, 128, 56, 56, 128, 3, 3, 2, 1, 1),
    "resnet_1x1": (8, 256, 56, 56, 64, 1, 1, 1, 0, 1),
    "resnet_c4": (8, 256, 14, 14, 256, 3, 3, 1, 1, 1),
    "depthwise": (8, 256, 28, 28, 256, 3, 3, 1, 1, 256),
}

#: name -> (N, C, H, W, kernel, stride, pad); each is run as max and as avg pooling.
POOL_CASES = {
    "pool2_cifar": (32, 64, 32, 32, 2, 2, 0),
    "pool3_stem": (8, 64, 112, 112, 3, 2, 1),
}

#: name -> (input shape of one image, number of classes); batch TRAIN_BATCH.
TRAIN_CASES = {
    "lenet5": ((1, 28, 28), 10),
    "vgg_small": ((3, 32, 32), 10),
}
TRAIN_BATCH = 64
TRAIN_LR = 0.01
TRAIN_MOMENTUM = 0.9

GROUPS = {"conv": tuple(CONV_CASES), "pool": tuple(POOL_CASES), "train": tuple(TRAIN_CASES)}
GROUPS["all"] = GROUPS["conv"] + GROUPS["pool"] + GROUPS["train"]

PEAK_SIZE = 2048

#: Seconds a timing sample lasts at least (the calls per sample are calibrated to it).
MIN_TIME = 0.05
MIN_TIME_QUICK = 0.002
DEFAULT_REPEAT = 5
#: A forced-algorithm variant (other than the one auto ran) is skipped when one
#: warm call takes longer than max(SLOW_ABS, SLOW_REL x the auto call): "when cheap".
SLOW_ABS = 0.25
SLOW_REL = 8.0
#: Sample the implementations round-robin (True) or each one's samples in a row (False, the
#: default: steady state, warm caches). See run(interleave=...).
INTERLEAVE = False


def select_cases(cases):
    """Normalise ``cases`` (a name, a group ``all|conv|pool|train``, or a list / comma string of
    them) to a list of known case names in layer-set order, without duplicates."""
    if cases is None:
        cases = "all"
    if isinstance(cases, str):
        items = [c.strip() for c in cases.split(",") if c.strip()]
    else:
        try:
            items = [str(c).strip() for c in cases]
        except TypeError:
            raise TypeError(f"cases must be a string or a list of case names, got {cases!r}") from None
    if not items:
        raise ValueError("cases is empty: give case names or one of all, conv, pool, train")
    chosen = set()
    for item in items:
        if item in GROUPS:
            chosen.update(GROUPS[item])
        elif item in GROUPS["all"]:
            chosen.add(item)
        else:
            raise ValueError(
                f"unknown benchmark case {item!r}; choose from the groups {', '.join(sorted(GROUPS))} "
                f"or the cases {', '.join(GROUPS['all'])}"
            )
    return [c for c in GROUPS["all"] if c in chosen]


def _thread_list(threads, quick=False):
    if threads is None:
        threads = [fastconv.get_num_threads()] if quick else sorted({1, fastconv.get_num_threads()})
    elif isinstance(threads, str):
        try:
            threads = [int(t) for t in threads.split(",") if t.strip()]
        except ValueError:
            raise ValueError(f"threads must be a comma-separated list of positive ints, got {threads!r}") from None
    elif isinstance(threads, int) and not isinstance(threads, bool):
        threads = [threads]
    out = []
    for t in threads:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
            raise ValueError(f"threads must be positive ints, got {threads!r}")
        if int(t) not in out:
            out.append(int(t))
    if not out:
        raise ValueError("threads is empty")
    return out


# ---------------------------------------------------------------- optional helpers


def _import_torch():
    """torch, or None when it cannot be imported (it is never a dependency)."""
    if os.environ.get("FASTCONV_BENCH_NO_TORCH"):
        return None
    try:
        import torch
    except Exception:  # ImportError, or a broken install
        return None
    return torch


def _import_threadpoolctl():
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl


def _blas_info():
    """threadpoolctl's description of NumPy's BLAS (the first 'blas' entry), or None."""
    tpc = _import_threadpoolctl()
    if tpc is None:
        return None
    for lib in tpc.threadpool_info():
        if lib.get("user_api") == "blas" and "numpy" in str(lib.get("filepath", "")):
            return lib
    for lib in tpc.threadpool_info():
        if lib.get("user_api") == "blas":
            return lib
    return None


def environment():
    """What the figures were measured on: a JSON-serialisable dict."""
    torch = _import_torch()
    blas = _blas_info()
    from ._runtime import cpu_name

    cpu = cpu_name()
    cfg = fastconv.config()
    env = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": cfg.get("cores"),
        "python": platform.python_version(),
        "fastconv": fastconv.__version__,
        "fastconv_openmp": cfg.get("openmp"),
        "fastconv_compiler": cfg.get("compiler"),
        "cpu_features": sorted(k for k, v in cfg.get("cpu_features", {}).items() if v),
        "numpy": np.__version__,
        "blas": None if blas is None else {
            k: blas.get(k) for k in ("internal_api", "version", "architecture", "threading_layer", "prefix")
        },
        "threadpoolctl": _import_threadpoolctl() is not None,
        "torch": None if torch is None else torch.__version__,
        "env": {k: os.environ[k] for k in sorted(os.environ)
                if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "FASTCONV_"))},
    }
    try:
        env["loadavg"] = list(os.getloadavg())
    except OSError:
        env["loadavg"] = None
    return env


@contextlib.contextmanager
def _threads(t, torch):
    """fastconv, NumPy's BLAS and torch each with ``t`` threads; restored afterwards."""
    prev_fc = fastconv.set_num_threads(t)
    prev_torch = torch.get_num_threads() if torch is not None else None
    tpc = _import_threadpoolctl()
    limiter = tpc.threadpool_limits(limits=t, user_api="blas") if tpc is not None else contextlib.nullcontext()
    try:
        with limiter:
            if torch is not None:
                torch.set_num_threads(t)
            yield
    finally:
        fastconv.set_num_threads(prev_fc)
        if torch is not None:
            torch.set_num_threads(prev_torch)


def _blas_threads():
    blas = _blas_info()
    return None if blas is None else blas.get("num_threads")


# ---------------------------------------------------------------- timing


class _Slow(Exception):
    pass


def _calibrate(fn, min_time, max_call=None):
    """Warm ``fn`` up; return (calls per sample so one sample lasts >= ``min_time``,
    seconds of one warm call).

    With ``max_call`` (seconds), raise _Slow when a call takes longer than that (the
    warm-up call may take twice as long: it pays for first-touch allocation).
    """
    t0 = time.perf_counter()
    fn()  # warm-up: first-touch allocation, lazy initialisation, caches
    dt = time.perf_counter() - t0
    if max_call is not None and dt > 2 * max_call:
        raise _Slow(f"one call took {dt * 1e3:.0f} ms (> {max_call * 1e3:.0f} ms)")
    if dt >= min_time and max_call is None:
        return 1, dt  # already one call per sample; spare the calibration call
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    if max_call is not None and dt > max_call:
        raise _Slow(f"one call took {dt * 1e3:.0f} ms (> {max_call * 1e3:.0f} ms)")
    if dt >= min_time:
        return 1, dt
    return int(min(10000, math.ceil(min_time / max(dt, 1e-7)))), dt


def _measure(fns, repeat, min_time, optional=None, best=False):
    """Median (or with ``best`` the least) seconds per call of each callable in ``fns`` (a dict).

    Each callable is warmed up and calibrated, then sampled ``repeat`` times in a row; with
    :data:`INTERLEAVE` true the samples are taken round-robin over the callables instead.
    ``optional`` maps names to a slowness factor: such a callable is skipped ("when cheap")
    when one warm call of it takes longer than max(SLOW_ABS, factor x the warm call of the
    first callable in ``fns``). Returns ({name: seconds or None}, {name: reason}).
    """
    optional = optional or {}
    numbers, skipped, samples = {}, {}, {}
    first = None

    def sample(name):
        fn, n = fns[name], numbers[name]
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples[name].append((time.perf_counter() - t0) / n)

    for name, fn in fns.items():
        limit = None
        if name in optional and first is not None:
            limit = max(SLOW_ABS, optional[name] * first)
        try:
            numbers[name], dt = _calibrate(fn, min_time, limit)
        except _Slow as e:
            skipped[name] = f"skipped: {e}"
            continue
        if first is None:
            first = dt
        samples[name] = []
        if not INTERLEAVE:
            for _ in range(repeat):
                sample(name)
    if INTERLEAVE:
        for _ in range(repeat):
            for name in numbers:
                sample(name)
    times = {name: (min(s) if best else statistics.median(s)) for name, s in samples.items()}
    for name in skipped:
        times[name] = None
    return times, skipped


def _matmul_time(repeat, min_time):
    """Seconds of the fastest of ``repeat`` samples of a float32 PEAK_SIZE^2 matmul.

    The peak is a machine limit, so the best sample is the estimate (a busy neighbour only
    ever slows a sample down).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((PEAK_SIZE, PEAK_SIZE), dtype=np.float32)
    b = rng.standard_normal((PEAK_SIZE, PEAK_SIZE), dtype=np.float32)
    c = np.empty_like(a)
    times, _ = _measure({"matmul": lambda: np.matmul(a, b, out=c)}, repeat, min_time, best=True)
    return times["matmul"]


def _apply_peak(rows, peak):
    """Fill the peak fields of the conv rows of one thread count, once its peak is known."""
    for r in rows:
        if r["kind"] != "conv":
            continue
        r["peak_gflops"] = peak
        for key, rate in (("peak_fraction", r["fastconv_gflops"]), ("torch_peak_fraction", r["torch_gflops"])):
            r[key] = None if peak is None or rate is None else rate / peak


# ---------------------------------------------------------------- the cases


def _speedup(other, mine):
    if other is None or mine is None or mine <= 0:
        return None
    return other / mine


def _gflops(flop, t):
    return None if t is None or t <= 0 else flop / t / 1e9


def conv_algos():
    """fastconv's explicit convolution algorithms (``functional.ALGOS`` without "auto")."""
    try:
        from .functional import ALGOS
    except ImportError:  # pragma: no cover - the native API is always there
        return ("im2col", "direct")
    return tuple(a for a in ALGOS if a != "auto")


def _conv_params(name):
    from ._args import conv_params

    N, C, H, W, K, R, S, stride, pad, groups = CONV_CASES[name]
    return conv_params((N, C, H, W), (K, C // groups, R, S), stride, pad, 1, groups)


def auto_algo(name, backward=False):
    """The algorithm fastconv's ``algo="auto"`` picks for convolution case ``name``, for the
    forward pass or (``backward``) the backward passes (``"<a>(dw)+<b>(dx)"`` when the
    weight and data gradients take different ones); None when that cannot be told."""
    try:
        from . import functional

        p = _conv_params(name)
        if not backward:
            return functional._choose_algo("auto", p, False, np.float32)
        w = functional._choose_algo("auto", p, "weight", np.float32)
        d = functional._choose_algo("auto", p, "data", np.float32)
        return w if w == d else f"{w}(dw)+{d}(dx)"
    except Exception:  # a private helper: tolerate it changing
        return None


def algo_applies(name, algo):
    """True when fastconv accepts ``algo`` for convolution case ``name`` (e.g. winograd needs
    3x3, stride 1): checked by an empty-batch call, which validates and returns at once."""
    N, C, H, W, K, R, S, stride, pad, groups = CONV_CASES[name]
    x = np.zeros((0, C, H, W), np.float32)
    w = np.zeros((K, C // groups, R, S), np.float32)
    try:
        fastconv.conv2d(x, w, None, stride, pad, 1, groups, algo=algo)
    except ValueError:
        return False
    return True


def conv_impls(name, torch=None, algos=("auto",)):
    """The callables timed for convolution case ``name``.

    Returns ``(info, impls)``: ``info`` holds the shape (with P, Q), ``flop_fwd``, ``auto`` and
    ``auto_backward`` (the algorithms ``algo="auto"`` picks for each pass); ``impls`` maps an
    implementation name to a pair ``(forward, forward_and_backward)`` of argument-less
    callables on fixed float32 data:
    ``"fastconv"`` (for ``algo="auto"``) or the algorithm's name for each of ``algos``,
    ``"numpy"`` and, when the ``torch`` module is given, ``"torch"``.
    """
    N, C, H, W, K, R, S, stride, pad, groups = CONV_CASES[name]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C // groups, R, S), dtype=np.float32)
    w *= np.float32(1.0 / math.sqrt(C // groups * R * S))
    b = rng.standard_normal(K, dtype=np.float32)
    y = fastconv.conv2d(x, w, b, stride, pad, 1, groups)
    P, Q = y.shape[2:]
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    kw = dict(stride=stride, padding=pad, dilation=1, groups=groups)
    info = {
        "shape": {"N": N, "C": C, "H": H, "W": W, "K": K, "R": R, "S": S,
                  "stride": stride, "pad": pad, "groups": groups, "P": P, "Q": Q},
        "flop_fwd": 2.0 * N * K * (C // groups) * R * S * P * Q,
        "auto": auto_algo(name),
        "auto_backward": auto_algo(name, backward=True),
    }

    def fc(algo):
        def fwd():
            fastconv.conv2d(x, w, b, algo=algo, **kw)

        def step():
            fastconv.conv2d(x, w, b, algo=algo, **kw)
            fastconv.conv2d_backward(dy, x, w, algo=algo, **kw)

        return fwd, step

    def nfwd():
        npb.conv2d_forward(x, w, b, **kw)

    def nstep():
        npb.conv2d_forward(x, w, b, **kw)
        npb.conv2d_backward(dy, x, w, **kw)

    impls = {("fastconv" if algo == "auto" else algo): fc(algo) for algo in algos}
    impls["numpy"] = (nfwd, nstep)
    if torch is not None:
        F = torch.nn.functional
        xt, wt, bt, dyt = (torch.from_numpy(a) for a in (x, w, b, dy))
        conv_bwd = torch.ops.aten.convolution_backward

        def tfwd():
            with torch.no_grad():
                F.conv2d(xt, wt, bt, stride, pad, 1, groups)

        def tstep():
            # The same work as fastconv's: forward, then dx, dw and db from dy in one call.
            with torch.no_grad():
                F.conv2d(xt, wt, bt, stride, pad, 1, groups)
                conv_bwd(dyt, xt, wt, [K], [stride, stride], [pad, pad], [1, 1], False, [0, 0],
                         groups, [True, True, True])

        impls["torch"] = (tfwd, tstep)
    return info, impls


def _conv_case(name, t, torch, repeat, min_time, per_algo):
    auto_f, auto_b = auto_algo(name), auto_algo(name, backward=True)
    algos = tuple(a for a in conv_algos() if algo_applies(name, a)) if per_algo else ()
    info, impls = conv_impls(name, torch, ("auto",) + algos)
    flop_fwd = info["flop_fwd"]
    rows = []
    for pi, (pass_, flop) in enumerate((("fwd", flop_fwd), ("fwd+bwd", 3.0 * flop_fwd))):
        # The algorithm auto runs in this pass is not timed twice: it gets the auto time.
        same = auto_f if pi == 0 or auto_f == auto_b else None
        fns = {k: v[pi] for k, v in impls.items() if k != same}  # "fastconv" (auto) first
        optional = {a: SLOW_REL for a in algos}
        times, skipped = _measure(fns, repeat, min_time, optional)
        tf = times["fastconv"]
        algo_s = {a: (tf if a == same else times.get(a)) for a in algos}
        rows.append({
            "kind": "conv",
            "case": name,
            "threads": t,
            "pass": pass_,
            "shape": info["shape"],
            "gflop": flop / 1e9,
            "algo": auto_f if pi == 0 or auto_f == auto_b else f"{auto_f}/{auto_b}",
            "fastconv_s": tf,
            "algo_s": algo_s,
            "numpy_s": times.get("numpy"),
            "torch_s": times.get("torch"),
            "fastconv_gflops": _gflops(flop, tf),
            "algo_gflops": {a: _gflops(flop, v) for a, v in algo_s.items()},
            "numpy_gflops": _gflops(flop, times.get("numpy")),
            "torch_gflops": _gflops(flop, times.get("torch")),
            "peak_gflops": None,           # filled by _apply_peak
            "peak_fraction": None,
            "torch_peak_fraction": None,
            "speedup_vs_numpy": _speedup(times.get("numpy"), tf),
            "speedup_vs_torch": _speedup(times.get("torch"), tf),
            "notes": "; ".join([f"{k} {v}" for k, v in skipped.items()]
                               + ([] if torch is not None else ["torch not importable"])),
        })
    return rows


def pool_impls(name, op, torch=None):
    """The callables timed for pooling case ``name`` with ``op`` ``"max"`` or ``"avg"``.

    Returns ``(info, impls)`` like :func:`conv_impls`: implementations ``"fastconv"``,
    ``"numpy"`` and (when ``torch`` is given) ``"torch"``, each a pair
    ``(forward, forward_and_backward)``. Max pooling's forward also produces the indices the
    backward needs, in every implementation.
    """
    if op not in ("max", "avg"):
        raise ValueError(f"op must be 'max' or 'avg', got {op!r}")
    N, C, H, W, k, s, p = POOL_CASES[name]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    y = fastconv.max_pool2d(x, k, s, p)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    info = {"shape": {"N": N, "C": C, "H": H, "W": W, "kernel": k, "stride": s, "pad": p,
                      "P": y.shape[2], "Q": y.shape[3]}}
    if op == "max":
        def ffwd():
            fastconv.max_pool2d(x, k, s, p, return_indices=True)

        def fstep():
            _, idx = fastconv.max_pool2d(x, k, s, p, return_indices=True)
            fastconv.max_pool2d_backward(dy, idx, x.shape)

        def nfwd():
            npb.max_pool2d_forward(x, k, s, p, return_indices=True)

        def nstep():
            _, arg = npb.max_pool2d_forward(x, k, s, p, return_indices=True)
            npb.max_pool2d_backward(dy, arg, x.shape, k, s, p)
    else:
        def ffwd():
            fastconv.avg_pool2d(x, k, s, p)

        def fstep():
            fastconv.avg_pool2d(x, k, s, p)
            fastconv.avg_pool2d_backward(dy, x.shape, k, s, p)

        def nfwd():
            npb.avg_pool2d_forward(x, k, s, p)

        def nstep():
            npb.avg_pool2d_forward(x, k, s, p)
            npb.avg_pool2d_backward(dy, x.shape, k, s, p)

    impls = {"fastconv": (ffwd, fstep), "numpy": (nfwd, nstep)}
    if torch is not None:
        F = torch.nn.functional
        aten = torch.ops.aten
        xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)
        if op == "max":
            def tfwd():
                with torch.no_grad():
                    F.max_pool2d(xt, k, s, p, return_indices=True)

            def tstep():
                with torch.no_grad():
                    _, idx = F.max_pool2d(xt, k, s, p, return_indices=True)
                    aten.max_pool2d_with_indices_backward(dyt, xt, [k, k], [s, s], [p, p], [1, 1],
                                                          False, idx)
        else:
            def tfwd():
                with torch.no_grad():
                    F.avg_pool2d(xt, k, s, p)

            def tstep():
                with torch.no_grad():
                    F.avg_pool2d(xt, k, s, p)
                    aten.avg_pool2d_backward(dyt, xt, [k, k], [s, s], [p, p], False, True, None)

        impls["torch"] = (tfwd, tstep)
    return info, impls


def _pool_case(name, t, torch, repeat, min_time):
    rows = []
    for op in ("max", "avg"):
        info, impls = pool_impls(name, op, torch)
        for pi, pass_ in enumerate(("fwd", "fwd+bwd")):
            times, _ = _measure({kk: v[pi] for kk, v in impls.items()}, repeat, min_time)
            tf = times["fastconv"]
            rows.append({
                "kind": "pool",
                "case": name,
                "op": op,
                "threads": t,
                "pass": pass_,
                "shape": info["shape"],
                "fastconv_s": tf,
                "numpy_s": times.get("numpy"),
                "torch_s": times.get("torch"),
                "speedup_vs_numpy": _speedup(times.get("numpy"), tf),
                "speedup_vs_torch": _speedup(times.get("torch"), tf),
                "notes": "" if torch is not None else "torch not importable",
            })
    return rows


def _fastconv_trainer(name, x, labels):
    """One training step of fastconv's model ``name`` as a callable, or raise ImportError."""
    try:
        from . import models, nn, optim
    except ImportError as e:
        raise ImportError(f"fastconv.models / fastconv.nn / fastconv.optim not importable yet ({e})") from e
    model = models.get_model(name, dtype=np.float32, seed=0)
    model.train()
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = optim.SGD(model.parameters(), lr=TRAIN_LR, momentum=TRAIN_MOMENTUM)

    def step():
        opt.zero_grad()
        loss_fn.forward(model.forward(x), labels)
        model.backward(loss_fn.backward())
        opt.step()

    return step


def _torch_model(torch, name):
    tnn = torch.nn
    if name == "lenet5":
        return tnn.Sequential(
            tnn.Conv2d(1, 20, 5), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(20, 50, 5), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Flatten(), tnn.Linear(800, 500), tnn.ReLU(), tnn.Linear(500, 10),
        )
    if name == "vgg_small":
        return tnn.Sequential(
            tnn.Conv2d(3, 32, 3, padding=1), tnn.ReLU(),
            tnn.Conv2d(32, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(),
            tnn.Conv2d(64, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Flatten(), tnn.Linear(4096, 256), tnn.ReLU(), tnn.Linear(256, 10),
        )
    raise ValueError(f"no torch model for {name!r}")


def _torch_trainer(torch, name, x, labels):
    torch.manual_seed(0)
    model = _torch_model(torch, name).float()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=TRAIN_LR, momentum=TRAIN_MOMENTUM)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(labels)
    loss_fn = torch.nn.functional.cross_entropy

    def step():
        opt.zero_grad()
        loss_fn(model(xt), yt).backward()
        opt.step()

    return step


def train_impls(name, torch=None):
    """The callables timed for training case ``name``: one step on a fixed random batch.

    Returns ``(impls, notes)``: ``impls`` maps ``"fastconv"`` (when fastconv.models, .nn and
    .optim import) and ``"torch"`` (when ``torch`` is given) to an argument-less callable doing
    one SGD-with-momentum step (zero_grad, forward, softmax cross-entropy, backward, update);
    ``notes`` lists why an implementation is missing.
    """
    shape, classes = TRAIN_CASES[name]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((TRAIN_BATCH,) + shape, dtype=np.float32)
    labels = rng.integers(0, classes, TRAIN_BATCH).astype(np.int64)
    impls, notes = {}, []
    try:
        impls["fastconv"] = _fastconv_trainer(name, x, labels)
    except ImportError as e:
        notes.append(f"fastconv skipped: {e}")
    if torch is not None:
        impls["torch"] = _torch_trainer(torch, name, x, labels)
    else:
        notes.append("torch not importable")
    return impls, notes


def _train_case(name, t, torch, repeat, min_time):
    fns, notes = train_impls(name, torch)
    times, _ = _measure(fns, repeat, min_time) if fns else ({}, {})
    tf, tt = times.get("fastconv"), times.get("torch")
    return [{
        "kind": "train",
        "case": name,
        "threads": t,
        "pass": "step",
        "batch": TRAIN_BATCH,
        "fastconv_s": tf,
        "torch_s": tt,
        "fastconv_img_s": None if tf is None else TRAIN_BATCH / tf,
        "torch_img_s": None if tt is None else TRAIN_BATCH / tt,
        "speedup_vs_torch": _speedup(tt, tf),
        "notes": "; ".join(notes),
    }]


# ---------------------------------------------------------------- run


def run(cases="all", threads=None, repeat=None, quick=False, per_algo=None, progress=None,
        interleave=False):
    """Run the benchmark; return a list of result dicts (JSON-serialisable).

    ``cases``: case names and/or groups (``all``, ``conv``, ``pool``, ``train``), as a list or a
    comma-separated string. ``threads``: thread counts to run at (list, int or "1,2"; default
    1 and fastconv's current count, or only the current count with ``quick``). ``repeat``:
    timing rounds (median taken; default 5, or 1 with ``quick``). ``quick``: tiny samples
    for a smoke test (figures are then rough).
    ``per_algo``: also time each of fastconv's algorithms forced, when cheap (default:
    yes, except with ``quick``).
    ``progress``: a callable taking a one-line message, or None. ``interleave``: sample the
    implementations round-robin instead of each one's samples in a row (see the module doc).

    For each thread count, a result of ``kind == "matmul"`` comes first: the NumPy float32
    2048 x 2048 matmul rate (the best of ``repeat`` samples taken before the cases and as many
    after them), the peak the ``peak_fraction`` of the conv rows refers to.
    """
    names = select_cases(cases)
    threads = _thread_list(threads, quick)
    if repeat is None:
        repeat = 1 if quick else DEFAULT_REPEAT
    if isinstance(repeat, bool) or not isinstance(repeat, (int, np.integer)) or repeat < 1:
        raise ValueError(f"repeat must be a positive int, got {repeat!r}")
    repeat = int(repeat)
    min_time = MIN_TIME_QUICK if quick else MIN_TIME
    if per_algo is None:
        per_algo = not quick
    say = progress or (lambda msg: None)
    torch = _import_torch()
    global INTERLEAVE
    prev_interleave, INTERLEAVE = INTERLEAVE, bool(interleave)
    try:
        return _run(names, threads, repeat, min_time, per_algo, say, torch)
    finally:
        INTERLEAVE = prev_interleave


def _run(names, threads, repeat, min_time, per_algo, say, torch):
    results = []
    for t in threads:
        with _threads(t, torch):
            fc_threads = fastconv.get_num_threads()
            say(f"[threads {t}] matmul {PEAK_SIZE} peak")
            pt_start = _matmul_time(repeat, min_time)
            peak_row = {
                "kind": "matmul",
                "case": f"matmul_{PEAK_SIZE}",
                "threads": t,
                "fastconv_threads": fc_threads,
                "blas_threads": _blas_threads(),
                "torch_threads": None if torch is None else torch.get_num_threads(),
            }
            rows = []
            for name in names:
                say(f"[threads {t}] {name}")
                if name in CONV_CASES:
                    rows += _conv_case(name, t, torch, repeat, min_time, per_algo)
                elif name in POOL_CASES:
                    rows += _pool_case(name, t, torch, repeat, min_time)
                else:
                    rows += _train_case(name, t, torch, repeat, min_time)
            # Measured again after the cases: a neighbour's burst at the start cannot lower it.
            say(f"[threads {t}] matmul {PEAK_SIZE} peak, again")
            pt = min(pt_start, _matmul_time(repeat, min_time))
            peak = 2.0 * PEAK_SIZE**3 / pt / 1e9
            peak_row.update(time_s=pt, gflops=peak)
            _apply_peak(rows, peak)
            results.append(peak_row)
            results += rows
    return results


# ---------------------------------------------------------------- report


def _ms(s):
    return "-" if s is None else (f"{s * 1e3:.3f}" if s < 0.01 else f"{s * 1e3:.2f}" if s < 1 else f"{s * 1e3:.0f}")


def _num(v, fmt="{:.1f}"):
    return "-" if v is None else fmt.format(v)


def _x(v):
    return "-" if v is None else f"{v:.2f}x"


def _pct(v):
    return "-" if v is None else f"{100 * v:.0f}%"


def _md(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


CONV_COLUMNS = ["layer", "threads", "pass", "GFLOP", "fastconv ms", "algo", "fastconv GFLOP/s",
                "% peak", "numpy ms", "torch ms", "torch GFLOP/s", "torch % peak", "vs numpy", "vs torch"]
POOL_COLUMNS = ["pooling", "op", "threads", "pass", "fastconv ms", "numpy ms", "torch ms",
                "vs numpy", "vs torch"]
TRAIN_COLUMNS = ["model", "threads", "batch", "fastconv img/s", "torch img/s", "vs torch", "notes"]
PEAK_COLUMNS = ["threads", "matmul 2048 ms", "peak GFLOP/s", "BLAS threads"]


def format_table(results):
    """Markdown tables (matmul peak, conv, pool, train) of :func:`run`'s results.

    Speedup columns are ``other_time / fastconv_time``: above 1 means fastconv is faster.
    """
    by_kind = {}
    for r in results:
        by_kind.setdefault(r.get("kind"), []).append(r)
    parts = []
    if "matmul" in by_kind:
        parts.append("Machine peak (NumPy float32 2048 x 2048 matmul, best sample, same run):\n\n" + _md(
            PEAK_COLUMNS,
            [[r["threads"], _ms(r["time_s"]), _num(r["gflops"]), _num(r["blas_threads"], "{}")]
             for r in by_kind["matmul"]],
        ))
    if "conv" in by_kind:
        convs = by_kind["conv"]
        seen = {a for r in convs for a in r.get("algo_s", {})}
        algos = [a for a in conv_algos() if a in seen] + sorted(seen - set(conv_algos()))
        header = CONV_COLUMNS[:8] + [f"{a} ms" for a in algos] + CONV_COLUMNS[8:]
        rows = []
        for r in convs:
            per = r.get("algo_s", {})
            cells = [("slow" if per[a] is None else _ms(per[a])) if a in per else
                     ("n/a" if per else "-") for a in algos]
            rows.append([
                r["case"], r["threads"], r["pass"], f"{r['gflop']:.3f}", _ms(r["fastconv_s"]),
                r["algo"] or "-", _num(r["fastconv_gflops"]), _pct(r["peak_fraction"]),
            ] + cells + [
                _ms(r["numpy_s"]), _ms(r["torch_s"]), _num(r["torch_gflops"]),
                _pct(r.get("torch_peak_fraction")), _x(r["speedup_vs_numpy"]), _x(r["speedup_vs_torch"]),
            ])
        parts.append("Convolution (fwd+bwd = forward + backward-data + backward-weight + bias; algo = what "
                     "algo='auto' ran (fwd/bwd when they differ); '<algo> ms' = that algorithm forced, "
                     "'slow' = skipped as much slower than auto, 'n/a' = not applicable to the layer; "
                     "speedup = other time / fastconv time):\n\n" + _md(header, rows))
        notes = sorted({f"{r['case']} ({r['threads']} thr, {r['pass']}): {r['notes']}"
                        for r in convs if r.get("notes")})
        if notes:
            parts.append("Notes:\n\n" + "\n".join(f"- {n}" for n in notes))
    if "pool" in by_kind:
        rows = [[r["case"], r["op"], r["threads"], r["pass"], _ms(r["fastconv_s"]), _ms(r["numpy_s"]),
                 _ms(r["torch_s"]), _x(r["speedup_vs_numpy"]), _x(r["speedup_vs_torch"])]
                for r in by_kind["pool"]]
        parts.append("Pooling (speedup = other time / fastconv time):\n\n" + _md(POOL_COLUMNS, rows))
    if "train" in by_kind:
        rows = [[r["case"], r["threads"], r["batch"], _num(r["fastconv_img_s"], "{:.0f}"),
                 _num(r["torch_img_s"], "{:.0f}"), _x(r["speedup_vs_torch"]), r.get("notes") or ""]
                for r in by_kind["train"]]
        parts.append("Training step (SGD momentum, softmax cross-entropy; "
                     "speedup = torch time / fastconv time):\n\n" + _md(TRAIN_COLUMNS, rows))
    return "\n\n".join(parts) + "\n"


def format_environment(env):
    blas = env.get("blas") or {}
    lines = [
        f"date: {env['date']}",
        f"cpu: {env['cpu']} ({env['cores']} cores); features: {', '.join(env['cpu_features']) or '-'}",
        f"python {env['python']}, fastconv {env['fastconv']} (OpenMP {'on' if env['fastconv_openmp'] else 'off'}, "
        f"{env['fastconv_compiler']})",
        f"numpy {env['numpy']}, BLAS: " + (
            f"{blas.get('internal_api')} {blas.get('version')} kernel {blas.get('architecture')} "
            f"({blas.get('threading_layer')})" if blas else "unknown (threadpoolctl not installed)"),
        f"torch: {env['torch'] or 'not importable'}",
        "environment: " + (", ".join(f"{k}={v}" for k, v in env["env"].items()) or "none of OPENBLAS_*, OMP_*, "
                           "MKL_*, FASTCONV_* set"),
    ]
    for key, when in (("loadavg", "start"), ("loadavg_end", "end")):
        if env.get(key):
            lines.append(f"load average (1, 5, 15 min) at {when}: " + ", ".join(f"{v:.2f}" for v in env[key]))
    return "\n".join(lines)


# ---------------------------------------------------------------- command line


def _add_arguments(p):
    p.add_argument("--threads", default=None,
                   help="comma-separated thread counts, e.g. 1,2 (default: 1 and fastconv's current count; "
                        "with --quick only the current count)")
    p.add_argument("--cases", default="all",
                   help="comma-separated case names or groups: all, conv, pool, train "
                        f"(cases: {', '.join(GROUPS['all'])}); default all")
    p.add_argument("--repeat", type=int, default=None,
                   help=f"timing rounds; the median is reported (default {DEFAULT_REPEAT}, 1 with --quick)")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write the environment and all results as JSON to PATH")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: tiny timing samples, 1 round, no per-algorithm timing "
                        "(figures are rough)")
    p.add_argument("--per-algo", dest="per_algo", action="store_true", default=None,
                   help="also time each of fastconv's algorithms (im2col, direct, gemm, ...) forced, when one call "
                        "is cheap (the default, except with --quick)")
    p.add_argument("--no-per-algo", dest="per_algo", action="store_false",
                   help="do not time fastconv's algorithms separately")
    p.add_argument("--interleave", action="store_true",
                   help="sample the implementations round-robin instead of each one's samples in a "
                        "row (spreads load drifts evenly, but every sample starts cold)")
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    return p


def add_parser(subparsers):
    """Register the ``bench`` subcommand on an argparse ``subparsers`` object.

    The subcommand's handler is stored as ``func`` (``args.func(args)`` returns the exit code).
    """
    p = subparsers.add_parser(
        "bench",
        help="time fastconv against NumPy and PyTorch on the benchmark layer set",
        description="Time fastconv against a plain-NumPy baseline and PyTorch (when installed) "
                    "on the benchmark layer set; print markdown tables.",
    )
    _add_arguments(p)
    p.set_defaults(func=run_from_args)
    return p


def run_from_args(args):
    """Run the benchmark for parsed arguments (of :func:`add_parser`); return the exit code."""
    progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        names = select_cases(args.cases)
        threads = _thread_list(args.threads, args.quick)
        if args.repeat is not None and args.repeat < 1:
            raise ValueError(f"--repeat must be a positive int, got {args.repeat}")
    except (TypeError, ValueError) as e:
        print(f"fastconv bench: error: {e}", file=sys.stderr)
        return 2
    env = environment()
    results = run(names, threads, args.repeat, quick=args.quick, per_algo=args.per_algo, progress=progress,
                  interleave=getattr(args, "interleave", False))
    try:
        env["loadavg_end"] = list(os.getloadavg())
    except OSError:
        env["loadavg_end"] = None
    print(format_environment(env))
    print()
    print(format_table(results), end="")
    if args.json:
        with open(args.json, "w") as f:
            arguments = {k: v for k, v in vars(args).items() if k != "func"}
            json.dump({"environment": env, "arguments": arguments, "results": results}, f, indent=1)
            f.write("\n")
    return 0


def main(argv=None):
    """``python -m fastconv.bench [--threads 1,2] [--cases ...] [--repeat R] [--json PATH] [--quick]``."""
    parser = _add_arguments(argparse.ArgumentParser(
        prog="fastconv bench",
        description="Time fastconv against a plain-NumPy baseline and PyTorch (when installed).",
    ))
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
