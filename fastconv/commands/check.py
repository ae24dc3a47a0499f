"""``fastconv check``: run the self-test (:mod:`fastconv.selftest`) and print a table."""

from __future__ import annotations

import time

from .. import selftest
from .._version import __version__
from .._runtime import get_num_threads, set_num_threads
from ._common import nonneg_int, positive_int

__all__ = ["add_parser", "run", "format_results"]


def add_parser(sub):
    tol = selftest.TOLERANCE
    p = sub.add_parser(
        "check", help="self-test: native kernels against the NumPy reference",
        description=("Run every native kernel (convolution forward and backward for each algorithm, "
                     "max and average pooling forward and backward, im2col, col2im, ReLU, the fully "
                     "connected layer forward and backward) on random "
                     "shapes in float32 and float64, compare with fastconv.reference and print the "
                     "worst error per op. Exits 1 on a mismatch (tolerance: "
                     f"{tol['float32']:g} float32, {tol['float64']:g} float64, relative "
                     "to the reference's largest magnitude)."))
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default: 0)")
    p.add_argument("--cases", type=positive_int, default=50,
                   help="random shapes per op and dtype (default: 50)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads for the native kernels (default: fastconv's default)")
    return p


def format_results(results, dtypes=tuple(selftest.TOLERANCE)):
    """The table of :func:`fastconv.selftest.run_checks`' results: a header, then one line per
    op with its worst error per dtype and OK / FAIL (and the first error message of a crash)."""
    name_w = max(len(r.op) for r in results) + 2
    lines = [f"{'op':<{name_w}}" + "".join(f"{dt:>11}" for dt in dtypes) + "  result"]
    for r in results:
        cells = "".join(f"{r.errors[dt]:>11.2e}" if dt in r.errors else f"{'n/a':>11}" for dt in dtypes)
        line = f"{r.op:<{name_w}}{cells}  {'OK' if r.ok else 'FAIL'}"
        if r.crash is not None:
            line += f"  ({r.crash})"
        lines.append(line)
    return "\n".join(lines)


def run(args):
    if args.threads is not None:
        set_num_threads(args.threads)
    print(f"fastconv {__version__} check: {args.cases} random cases per op and dtype, "
          f"seed {args.seed}, {get_num_threads()} threads")
    t0 = time.perf_counter()
    results = selftest.run_checks(args.seed, args.cases)
    print(format_results(results))
    failed = [r.op for r in results if not r.ok]
    dt = time.perf_counter() - t0
    if failed:
        print(f"FAILED: {len(failed)} of {len(results)} ops differ from the reference: {', '.join(failed)} "
              f"({dt:.1f} s)")
        return 1
    print(f"all {len(results)} ops match the reference ({dt:.1f} s)")
    return 0
