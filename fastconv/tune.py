"""Measured algorithm choice for ``algo="auto"``, cached on disk (``fastconv tune``).

``algo="auto"`` picks the convolution algorithm from a built-in rule, measured
on the development machine (see :func:`fastconv._dispatch.choose_algo`).
Another CPU may rank the algorithms differently, so ``fastconv tune`` times
every algorithm (``direct``, ``gemm`` and, for 3x3 stride-1 layers,
``winograd``) on the convolutions you name, for each pass (forward, weight
gradient, data gradient) at the current thread count and dtype, and writes the
fastest to a JSON file. From then on ``auto`` uses the measured winner for
exactly those geometries (batch, channels, image size, kernel, stride, padding,
dilation, groups, dtype) and the rule for everything else. An explicit
``algo=`` always wins. The choice does not depend on the thread count of a
later call (tune at the count you train with), so ``auto`` stays bitwise
reproducible across thread counts.

The file is ``$FASTCONV_TUNE_FILE`` when that is set (an empty value turns
the cache off), else ``$XDG_CACHE_HOME/fastconv/tune.json`` (by default
``~/.cache/fastconv/tune.json``). It records the CPU, its SIMD level and the
fastconv version it was measured with; entries from another CPU or version
are ignored. A missing, unreadable or corrupt file only means "no tuning":
``auto`` never fails because of it. (The file itself is kept by
:mod:`fastconv._tunetable`; this module measures and writes through it.)

Usage::

    fastconv tune --cases all                  # the benchmark layer set
    fastconv tune --model vgg_small --batch 64  # the conv layers of a model
    fastconv tune --show | --clear

or from Python: :func:`tune`, :func:`show`, :func:`clear`.
"""

from __future__ import annotations

import sys

import numpy as np

from . import _backend, _runtime, _timing
from . import _kernels as K
from ._args import ConvParams, conv_params
from ._dispatch import conv_geom, conv_work, winograd_ok
from ._tunetable import (
    CANDIDATES,
    FORMAT,
    PASSES,
    cache_path,
    clear,
    entries,
    key,
    lookup,
    machine,
    write,
)

__all__ = ["cache_path", "tune", "show", "lookup", "entries", "clear", "model_layers", "tune_layer",
           "machine", "PASSES", "CANDIDATES", "FORMAT"]

#: A candidate is not sampled when its first call takes longer than this many times
#: the fastest candidate timed so far for the same pass (and more than SKIP_MIN_S).
SKIP_FACTOR = 8
SKIP_MIN_S = 0.01


def _pass_fns(p, algo, dtype, nthreads, rng):
    """Argument-less callables running each pass of ``algo`` on random data."""
    x = rng.standard_normal(p.x_shape).astype(dtype)
    w = rng.standard_normal(p.w_shape).astype(dtype)
    dy = rng.standard_normal(p.y_shape).astype(dtype)
    b = np.zeros(p.K, dtype)
    y, dx, dw, db = np.empty(p.y_shape, dtype), np.empty_like(x), np.empty_like(w), np.empty_like(b)
    g = conv_geom(p)
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
    sampling, :func:`fastconv._timing.measure`); None where the algorithm does not apply
    (Winograd off 3x3 stride 1) or was skipped as more than 8x slower than the fastest
    so far on its first call.
    """
    if nthreads is None:
        nthreads = _runtime.conv_threads(conv_work(p))
    rng = np.random.default_rng(seed)
    results = {pass_: {"algo": None, "ms": {}} for pass_ in PASSES}
    for algo in CANDIDATES:
        if algo == "winograd" and not winograd_ok(p):
            for pass_ in PASSES:
                results[pass_]["ms"][algo] = None
            continue
        fns = _pass_fns(p, algo, dtype, nthreads, rng)
        for pass_, fn in fns.items():
            r = results[pass_]
            known = [v for v in r["ms"].values() if v is not None]
            first = _timing.time_call(fn)
            if known and first * 1e3 > SKIP_FACTOR * min(known) and first > SKIP_MIN_S:
                r["ms"][algo] = None
                continue
            times, _ = _timing.measure({algo: fn}, repeat, _timing.MIN_TIME, best=True)
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
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    if cache_path() is None:
        raise ValueError("the tuning cache is turned off (FASTCONV_TUNE_FILE is empty)")
    out, new = [], {}
    for layer in layers:
        if not isinstance(layer, ConvParams):
            N, C, H, W, K_, R, S, stride, pad, groups = layer
            layer = conv_params((N, C, H, W), (K_, C // groups, R, S), stride, pad, 1, groups)
        if layer.N == 0:
            continue
        nt = _runtime.conv_threads(conv_work(layer))
        if progress:
            progress(f"tuning {layer.x_shape} * {layer.w_shape}, stride {layer.stride}, "
                     f"{dtype.name}, {nt} thread(s)")
        res = tune_layer(layer, dtype, nt, repeat)
        for pass_, r in res.items():
            new[key(layer, pass_, dtype)] = {"algo": r["algo"], "ms": r["ms"], "threads": nt}
        out.append((layer, res))
    if new:
        write(new)
    return out


def show(file=None):
    """Print the tuning file's path and its entries for this machine (what ``fastconv tune
    --show`` prints) to ``file`` (default: standard output)."""
    file = sys.stdout if file is None else file
    table = entries()
    print(f"tuning file: {cache_path()} ({len(table)} entries for this machine)", file=file)
    for k in sorted(table):
        ms = table[k].get("ms", {})
        times = ", ".join(f"{a} {v:.3f} ms" if v is not None else f"{a} -" for a, v in ms.items())
        print(f"  {k}: {table[k].get('algo')}  ({times})", file=file)


def _conv_call_params(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algo="auto"):
    """The geometry of a ``conv2d`` call, from its arguments (``conv2d``'s signature)."""
    return conv_params(x.shape, w.shape, stride, padding, dilation, groups)


def model_layers(model, input_shape):
    """The convolution geometries a forward pass of ``model`` on a batch of ``input_shape``
    (N, C, H, W) runs, in order, without duplicates.

    The model runs once in eval mode on zeros, watched through
    :func:`fastconv._backend.watch` (in this thread only; nothing is patched), so every
    convolution a layer runs is seen, however the network is wired.
    """
    seen, layers = set(), []

    def note(name, args, kwargs):
        if name == "conv2d":
            p = _conv_call_params(*args, **kwargs)
            if p not in seen:
                seen.add(p)
                layers.append(p)

    x = np.zeros(input_shape, model.dtype)
    was_training = model.training
    model.eval()
    try:
        with _backend.watch(note):
            model.forward(x)
    finally:
        model.train(was_training)
    return layers
