"""Timing of argument-less callables, shared by ``fastconv tune`` and ``fastconv bench``.

Every callable is called once to warm up, then calibrated to a number of calls
per sample (so a sample lasts at least ``min_time``), then sampled ``repeat``
times in a row (steady state: warm caches, thread pools awake); the figure is
the median per-call time, or with ``best`` the least. With ``interleave`` the
samples are instead taken round-robin over the callables, which spreads slow
drifts of a shared machine's load evenly but starts every sample cold.
"""

from __future__ import annotations

import math
import statistics
import time

__all__ = ["MIN_TIME", "SLOW_ABS", "Slow", "time_call", "calibrate", "measure"]

#: Seconds a timing sample lasts at least (the calls per sample are calibrated to it).
MIN_TIME = 0.05
#: An optional callable is skipped when one warm call takes longer than
#: max(SLOW_ABS, its factor x the first callable's warm call): see :func:`measure`.
SLOW_ABS = 0.25


class Slow(Exception):
    """A call took longer than the limit it was given."""


def time_call(fn):
    """Seconds one call of ``fn`` takes (wall clock)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def calibrate(fn, min_time, max_call=None):
    """Warm ``fn`` up; return (calls per sample so one sample lasts >= ``min_time``,
    seconds of one warm call).

    With ``max_call`` (seconds), raise :class:`Slow` when a call takes longer than that
    (the warm-up call may take twice as long: it pays for first-touch allocation).
    """
    dt = time_call(fn)  # warm-up: first-touch allocation, lazy initialisation, caches
    if max_call is not None and dt > 2 * max_call:
        raise Slow(f"one call took {dt * 1e3:.0f} ms (> {max_call * 1e3:.0f} ms)")
    if dt >= min_time and max_call is None:
        return 1, dt  # already one call per sample; spare the calibration call
    dt = time_call(fn)
    if max_call is not None and dt > max_call:
        raise Slow(f"one call took {dt * 1e3:.0f} ms (> {max_call * 1e3:.0f} ms)")
    if dt >= min_time:
        return 1, dt
    return int(min(10000, math.ceil(min_time / max(dt, 1e-7)))), dt


def measure(fns, repeat, min_time=MIN_TIME, optional=None, best=False, interleave=False):
    """Median (or with ``best`` the least) seconds per call of each callable in ``fns`` (a dict).

    Each callable is warmed up and calibrated, then sampled ``repeat`` times in a row; with
    ``interleave`` the samples are taken round-robin over the callables instead.
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
            numbers[name], dt = calibrate(fn, min_time, limit)
        except Slow as e:
            skipped[name] = f"skipped: {e}"
            continue
        if first is None:
            first = dt
        samples[name] = []
        if not interleave:
            for _ in range(repeat):
                sample(name)
    if interleave:
        for _ in range(repeat):
            for name in numbers:
                sample(name)
    times = {name: (min(s) if best else statistics.median(s)) for name, s in samples.items()}
    for name in skipped:
        times[name] = None
    return times, skipped
