"""Running the cases: the timing loop over thread counts, and the result rows.

Every row is a JSON-serialisable dict; :mod:`fastconv.bench.report` turns a
list of them into tables. Timing itself is :func:`fastconv._timing.measure`.
"""

from __future__ import annotations

import numpy as np

from .. import _timing
from .._runtime import get_num_threads
from .._timing import MIN_TIME
from .cases import CONV_CASES, POOL_CASES, TRAIN_BATCH, select_cases, thread_list
from .env import blas_threads, import_torch, threads as thread_settings
from .impls import algo_applies, auto_algo, conv_algos, conv_impls, pool_impls, train_impls

__all__ = ["run", "PEAK_SIZE", "MIN_TIME", "MIN_TIME_QUICK", "DEFAULT_REPEAT", "SLOW_REL", "INTERLEAVE"]

#: Side of the float32 matmul whose rate is the machine's peak.
PEAK_SIZE = 2048

MIN_TIME_QUICK = 0.002
DEFAULT_REPEAT = 5
#: A forced-algorithm variant (other than the one auto ran) is skipped when one
#: warm call takes longer than max(_timing.SLOW_ABS, SLOW_REL x the auto call): "when cheap".
SLOW_REL = 8.0
#: The default of run(interleave=...): sample the implementations round-robin (True) or
#: each one's samples in a row (False: steady state, warm caches). Never changed by a run.
INTERLEAVE = False


def _matmul_time(repeat, min_time, interleave=INTERLEAVE):
    """Seconds of the fastest of ``repeat`` samples of a float32 PEAK_SIZE^2 matmul.

    The peak is a machine limit, so the best sample is the estimate (a busy neighbour only
    ever slows a sample down).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((PEAK_SIZE, PEAK_SIZE), dtype=np.float32)
    b = rng.standard_normal((PEAK_SIZE, PEAK_SIZE), dtype=np.float32)
    c = np.empty_like(a)
    times, _ = _timing.measure({"matmul": lambda: np.matmul(a, b, out=c)}, repeat, min_time, best=True,
                               interleave=interleave)
    return times["matmul"]


def _apply_peak(rows, peak):
    """Fill the peak fields of the conv rows of one thread count, once its peak is known."""
    for r in rows:
        if r["kind"] != "conv":
            continue
        r["peak_gflops"] = peak
        for key, rate in (("peak_fraction", r["fastconv_gflops"]), ("torch_peak_fraction", r["torch_gflops"])):
            r[key] = None if peak is None or rate is None else rate / peak


def _speedup(other, mine):
    if other is None or mine is None or mine <= 0:
        return None
    return other / mine


def _gflops(flop, t):
    return None if t is None or t <= 0 else flop / t / 1e9


def _conv_case(name, t, torch, repeat, min_time, per_algo, interleave=INTERLEAVE):
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
        times, skipped = _timing.measure(fns, repeat, min_time, optional, interleave=interleave)
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


def _pool_case(name, t, torch, repeat, min_time, interleave=INTERLEAVE):
    rows = []
    for op in ("max", "avg"):
        info, impls = pool_impls(name, op, torch)
        for pi, pass_ in enumerate(("fwd", "fwd+bwd")):
            times, _ = _timing.measure({kk: v[pi] for kk, v in impls.items()}, repeat, min_time,
                                       interleave=interleave)
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


def _train_case(name, t, torch, repeat, min_time, interleave=INTERLEAVE):
    fns, notes = train_impls(name, torch)
    times, _ = _timing.measure(fns, repeat, min_time, interleave=interleave) if fns else ({}, {})
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


def run(cases="all", threads=None, repeat=None, quick=False, per_algo=None, progress=None,
        interleave=INTERLEAVE):
    """Run the benchmark; return a list of result dicts (JSON-serialisable).

    ``cases``: case names and/or groups (``all``, ``conv``, ``pool``, ``train``), as a list or a
    comma-separated string. ``threads``: thread counts to run at (list, int or "1,2"; default
    1 and fastconv's current count, or only the current count with ``quick``). ``repeat``:
    timing rounds (median taken; default 5, or 1 with ``quick``). ``quick``: tiny samples
    for a smoke test (figures are then rough).
    ``per_algo``: also time each of fastconv's algorithms forced, when cheap (default:
    yes, except with ``quick``).
    ``progress``: a callable taking a one-line message, or None. ``interleave``: sample the
    implementations round-robin instead of each one's samples in a row (see the package doc).

    For each thread count, a result of ``kind == "matmul"`` comes first: the NumPy float32
    2048 x 2048 matmul rate (the best of ``repeat`` samples taken before the cases and as many
    after them), the peak the ``peak_fraction`` of the conv rows refers to.
    """
    names = select_cases(cases)
    threads = thread_list(threads, quick)
    if repeat is None:
        repeat = 1 if quick else DEFAULT_REPEAT
    if isinstance(repeat, bool) or not isinstance(repeat, (int, np.integer)) or repeat < 1:
        raise ValueError(f"repeat must be a positive int, got {repeat!r}")
    repeat = int(repeat)
    min_time = MIN_TIME_QUICK if quick else MIN_TIME
    if per_algo is None:
        per_algo = not quick
    say = progress or (lambda msg: None)
    return _run(names, threads, repeat, min_time, per_algo, say, import_torch(), bool(interleave))


def _run(names, threads, repeat, min_time, per_algo, say, torch, interleave=INTERLEAVE):
    results = []
    for t in threads:
        with thread_settings(t, torch):
            fc_threads = get_num_threads()
            say(f"[threads {t}] matmul {PEAK_SIZE} peak")
            pt_start = _matmul_time(repeat, min_time, interleave)
            peak_row = {
                "kind": "matmul",
                "case": f"matmul_{PEAK_SIZE}",
                "threads": t,
                "fastconv_threads": fc_threads,
                "blas_threads": blas_threads(),
                "torch_threads": None if torch is None else torch.get_num_threads(),
            }
            rows = []
            for name in names:
                say(f"[threads {t}] {name}")
                if name in CONV_CASES:
                    rows += _conv_case(name, t, torch, repeat, min_time, per_algo, interleave)
                elif name in POOL_CASES:
                    rows += _pool_case(name, t, torch, repeat, min_time, interleave)
                else:
                    rows += _train_case(name, t, torch, repeat, min_time, interleave)
            # Measured again after the cases: a neighbour's burst at the start cannot lower it.
            say(f"[threads {t}] matmul {PEAK_SIZE} peak, again")
            pt = min(pt_start, _matmul_time(repeat, min_time, interleave))
            peak = 2.0 * PEAK_SIZE**3 / pt / 1e9
            peak_row.update(time_s=pt, gflops=peak)
            _apply_peak(rows, peak)
            results.append(peak_row)
            results += rows
    return results
