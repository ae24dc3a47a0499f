"""Measured algorithm choice for ``algo="auto"``, cached on disk (``fastconv tune``).

``algo="auto"`` picks the convolution algorithm from a built-in rule, measured
on the development machine (see ``functional._choose_algo``). Another CPU may
rank the algorithms differently, so ``fastconv tune`` times every algorithm
(``direct``, ``gemm`` and, for 3x3 stride-1 layers, ``winograd``) on the
convolutions you name, for each pass (forward, weight gradient, data
gradient) at the current thread count and dtype, and writes the fastest to a
JSON file. From then on ``auto`` uses the measured winner for exactly those
geometries (batch, channels, image size, kernel, stride, padding, dilation,
groups, dtype) and the rule for everything else. An explicit ``algo=`` always
wins. The choice does not depend on the thread count of a later call (tune at
the count you train with), so ``auto`` stays bitwise reproducible across
thread counts.

The file is ``$FASTCONV_TUNE_FILE`` when that is set (an empty value turns
the cache off), else ``$XDG_CACHE_HOME/fastconv/tune.json`` (by default
``~/.cache/fastconv/tune.json``). It records the CPU, its SIMD level and the
fastconv version it was measured with; entries from another CPU or version
are ignored. A missing, unreadable or corrupt file only means "no tuning":
``auto`` never fails because of it.

Usage::

    fastconv tune --cases all                  # the benchmark layer set
    fastconv tune --model vgg_small --batch 64  # the conv layers of a model
    fastconv tune --show | --clear

or from Python: :func:`tune`, :func:`show`, :func:`clear`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ._fileio import atomic_write

__all__ = ["cache_path", "tune", "lookup", "entries", "clear", "PASSES", "CANDIDATES"]

#: The passes a choice is made for.
PASSES = ("forward", "weight", "data")
#: The algorithms timed (the whole-C ones; "im2col" runs in NumPy's BLAS).
CANDIDATES = ("direct", "gemm", "winograd")
FORMAT = 1

_cache = None          # (where, {key: algo}) once loaded; where = the env that named the file


def cache_path():
    """The tuning file in use, or None when the cache is turned off (``FASTCONV_TUNE_FILE=""``)."""
    env = os.environ.get("FASTCONV_TUNE_FILE")
    if env is not None:
        return Path(env) if env.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastconv" / "tune.json"


def machine():
    """What a tuning result is valid for: CPU, SIMD level and fastconv version."""
    import fastconv
    from . import _kernels, _runtime

    return f"{_runtime.cpu_name()} | {_kernels.isa()} | fastconv {fastconv.__version__}"


def _key(p, pass_, dtype):
    # The thread count is not part of the key: one choice for every thread count
    # keeps auto's results bitwise identical whatever the thread count (each
    # algorithm's are). The count the layer was tuned at is stored in the entry.
    return (f"{pass_} {np.dtype(dtype).name} "
            f"N{p.N} C{p.C} H{p.H} W{p.W} K{p.K} R{p.R} S{p.S} g{p.groups} "
            f"s{p.stride[0]},{p.stride[1]} p{p.pad_top},{p.pad_bottom},{p.pad_left},{p.pad_right} "
            f"d{p.dilation[0]},{p.dilation[1]}")


def _file_entries(path):
    """The entries of the tuning file at ``path`` when it is in this format and was
    measured on this machine: {key: {"algo": ..., "ms": {algo: ms}, "threads": n}};
    else (absent, unreadable, corrupt, another CPU or version) {}."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("machine") != machine():
        return {}
    found = data.get("entries")
    return dict(found) if isinstance(found, dict) else {}


def _read(path):
    """{key: algo} of the usable entries of the file at ``path``."""
    out = {}
    for k, v in _file_entries(path).items():
        algo = v.get("algo") if isinstance(v, dict) else None
        if isinstance(k, str) and algo in CANDIDATES:
            out[k] = algo
    return out


def _load():
    """The table for the current file, read once per process (and again after a
    ``tune`` or ``clear`` here, or when the variables naming the file change)."""
    global _cache
    where = (os.environ.get("FASTCONV_TUNE_FILE"), os.environ.get("XDG_CACHE_HOME"),
             os.environ.get("HOME"))
    if _cache is None or _cache[0] != where:
        path = cache_path()
        _cache = (where, {} if path is None else _read(path))
    return _cache[1]


def lookup(p, pass_, dtype):
    """The tuned algorithm for geometry ``p`` (``fastconv._args.ConvParams``), pass
    ``"forward"``, ``"weight"`` or ``"data"`` and dtype, whatever the thread count (see
    the module docstring); None when untuned."""
    table = _load()
    if not table:
        return None
    return table.get(_key(p, pass_, dtype))


def entries():
    """The tuning file's entries for this machine: {key: {"algo": ..., "ms": {algo: ms},
    "threads": n}} ({} when there is no usable file)."""
    path = cache_path()
    return {} if path is None else _file_entries(path)


def clear():
    """Delete the tuning file; returns True when there was one."""
    global _cache
    _cache = None
    path = cache_path()
    if path is None or not path.exists():
        return False
    path.unlink()
    return True


def _write(new_entries):
    """Merge ``new_entries`` into the file (atomically: a temporary file, then rename)."""
    global _cache
    path = cache_path()
    if path is None:
        raise ValueError("the tuning cache is turned off (FASTCONV_TUNE_FILE is empty)")
    merged = entries()
    merged.update(new_entries)
    data = {"format": FORMAT, "machine": machine(), "entries": merged}
    atomic_write(path, lambda f: json.dump(data, f, indent=1, sort_keys=True), "w")
    _cache = None
    return path


def _pass_fns(p, algo, dtype, nthreads, rng):
    """Argument-less callables running each pass of ``algo`` on random data."""
    from . import _kernels as K
    from .functional import _geom

    x = rng.standard_normal(p.x_shape).astype(dtype)
    w = rng.standard_normal(p.w_shape).astype(dtype)
    dy = rng.standard_normal(p.y_shape).astype(dtype)
    b = np.zeros(p.K, dtype)
    y, dx, dw, db = np.empty(p.y_shape, dtype), np.empty_like(x), np.empty_like(w), np.empty_like(b)
    g = _geom(p)
    aid = K.ALGO_ID[algo]
    flat = (lambda a: a.reshape(-1))
    return {
        "forward": lambda: K.conv2d_fwd(aid, g, flat(x), flat(w), b, flat(y), nthreads),
        "weight": lambda: K.conv2d_bwd_weight(aid, g, flat(dy), flat(x), flat(dw), db, nthreads),
        "data": lambda: K.conv2d_bwd_data(aid, g, flat(dy), flat(w), flat(dx), nthreads),
    }


def tune_layer(p, dtype=np.float32, nthreads=None, repeat=3, seed=0):
    """Time every candidate algorithm on geometry ``p`` for each pass.

    Returns {pass: {"algo": fastest, "ms": {algo: milliseconds or None}}}: the least
    time per call over ``repeat`` samples of at least 50 ms each (the benchmark runner's
    sampling, ``bench._measure``); None where the algorithm does not apply (Winograd off
    3x3 stride 1) or was skipped as more than 8x slower than the fastest so far on its
    first call.
    """
    from . import _runtime, bench
    from .functional import _conv_work, _winograd_ok

    if nthreads is None:
        nthreads = _runtime.kernel_threads(_conv_work(p))
    rng = np.random.default_rng(seed)
    results = {pass_: {"algo": None, "ms": {}} for pass_ in PASSES}
    for algo in CANDIDATES:
        if algo == "winograd" and not _winograd_ok(p):
            for pass_ in PASSES:
                results[pass_]["ms"][algo] = None
            continue
        fns = _pass_fns(p, algo, dtype, nthreads, rng)
        for pass_, fn in fns.items():
            r = results[pass_]
            known = [v for v in r["ms"].values() if v is not None]
            t0 = time.perf_counter()
            fn()
            first = time.perf_counter() - t0
            if known and first * 1e3 > 8 * min(known) and first > 0.01:
                r["ms"][algo] = None
                continue
            times, _ = bench._measure({algo: fn}, repeat, bench.MIN_TIME, best=True)
            r["ms"][algo] = times[algo] * 1e3
    for r in results.values():
        timed = {a: v for a, v in r["ms"].items() if v is not None}
        r["algo"] = min(timed, key=timed.get)
    return results


def tune(layers, dtype=np.float32, repeat=3, progress=None):
    """Tune each geometry in ``layers`` (``ConvParams``, or tuples (N, C, H, W, K, R, S, stride,
    pad, groups)) at the current thread count and write the winners to the cache file.

    Returns a list of (params, {pass: {"algo", "ms"}}). ``progress``: a callable taking a
    one-line message, or None.
    """
    from . import _runtime
    from ._args import ConvParams, conv_params
    from .functional import _conv_work

    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    if cache_path() is None:
        raise ValueError("the tuning cache is turned off (FASTCONV_TUNE_FILE is empty)")
    out, new = [], {}
    for layer in layers:
        if not isinstance(layer, ConvParams):
            N, C, H, W, K, R, S, stride, pad, groups = layer
            layer = conv_params((N, C, H, W), (K, C // groups, R, S), stride, pad, 1, groups)
        if layer.N == 0:
            continue
        nt = _runtime.kernel_threads(_conv_work(layer))
        if progress:
            progress(f"tuning {layer.x_shape} * {layer.w_shape}, stride {layer.stride}, "
                     f"{dtype.name}, {nt} thread(s)")
        res = tune_layer(layer, dtype, nt, repeat)
        for pass_, r in res.items():
            new[_key(layer, pass_, dtype)] = {"algo": r["algo"], "ms": r["ms"], "threads": nt}
        out.append((layer, res))
    if new:
        _write(new)
    return out


def model_layers(model, input_shape):
    """The convolution geometries a forward pass of ``model`` on a batch of ``input_shape``
    (N, C, H, W) runs, in order, without duplicates."""
    from . import functional
    from ._args import conv_params

    seen, layers = set(), []
    real = functional.conv2d

    def record(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algo="auto"):
        p = conv_params(x.shape, w.shape, stride, padding, dilation, groups)
        if p not in seen:
            seen.add(p)
            layers.append(p)
        return real(x, w, b, stride, padding, dilation, groups, algo)

    functional.conv2d = record
    try:
        x = np.zeros(input_shape, model.dtype)
        was_training = model.training
        model.eval()
        try:
            model.forward(x)
        finally:
            model.train(was_training)
    finally:
        functional.conv2d = real
    return layers
