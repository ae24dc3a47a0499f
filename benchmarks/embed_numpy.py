"""fastconv (and PyTorch) inside NumPy code: how much slower are their calls right after a
large NumPy matrix product than on idle cores?

After ``a @ b`` OpenBLAS's worker threads keep spinning for a while (they busy-wait for
the next BLAS call before they sleep), so on a machine with few cores the next library
that wants those cores has to share them. This script measures it: for each library,
the time of the next ``calls`` convolution calls (``cifar_c2``: 32 x 32 x 32 x 32 -> 64,
3x3, forward) right after a 2048 x 2048 float32 matmul, against the same calls after a
sleep long enough for OpenBLAS's threads to go idle. A ratio of 1.0 means no slowdown.
It also measures the other direction, fastconv's idle threads (they spin about 100 us
before they sleep, fastconv's GOMP_SPINCOUNT default): a 512 x 512 NumPy product right
after one fastconv call, against the same product after a sleep.

    python benchmarks/embed_numpy.py                    # fastconv and torch, 2 threads
    python benchmarks/embed_numpy.py --threads 2 --rounds 15 --calls 3
    OPENBLAS_NUM_THREADS=1 python benchmarks/embed_numpy.py       # what a user can set
    OPENBLAS_THREAD_TIMEOUT=28 python benchmarks/embed_numpy.py   # OpenBLAS's own default
    python -c "import numpy, runpy; runpy.run_path('benchmarks/embed_numpy.py', run_name='__main__')"
                                       # NumPy imported before fastconv: its default not applied

Rounds alternate the two conditions and the libraries, and the median of each is
reported. Needs only NumPy and fastconv; PyTorch is timed when it can be imported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import fastconv  # before NumPy, as a script that wants fastconv's OpenBLAS default should

import numpy as np


def _conv_calls(lib, threads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 32, 32, 32), dtype=np.float32)
    w = rng.standard_normal((64, 32, 3, 3), dtype=np.float32) * np.float32(0.06)
    if lib == "fastconv":
        fastconv.set_num_threads(threads)
        return lambda: fastconv.conv2d(x, w, padding=1)
    import torch  # optional comparison, only imported when asked for

    torch.set_num_threads(threads)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)

    def call():
        with torch.no_grad():
            torch.nn.functional.conv2d(xt, wt, padding=1)

    return call


def _timed(call, calls):
    t0 = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - t0) / calls


def measure(libs, threads=2, rounds=11, calls=3, size=2048, idle=0.4):
    """{lib: (after_matmul_s, idle_s)}: medians over ``rounds`` of the mean time of the
    next ``calls`` convolution calls, right after ``a @ b`` (size x size float32) and
    after sleeping ``idle`` seconds."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    fns = {lib: _conv_calls(lib, threads) for lib in libs}
    for f in fns.values():      # warm up (thread pools created, workspace cached)
        f(), f()
    a @ b
    res = {lib: ([], []) for lib in libs}
    for r in range(rounds):
        for lib, f in fns.items():
            for cond in ((0, 1) if r % 2 else (1, 0)):
                if cond == 0:
                    a @ b
                else:
                    time.sleep(idle)
                res[lib][cond].append(_timed(f, calls))
    return {lib: (statistics.median(v[0]), statistics.median(v[1])) for lib, v in res.items()}


def measure_reverse(threads=2, rounds=11, size=512, idle=0.01):
    """(after_s, idle_s): medians over ``rounds`` of a size x size float32 NumPy product
    right after one fastconv convolution call and after sleeping ``idle`` seconds."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((size, size), dtype=np.float32)
    f = _conv_calls("fastconv", threads)
    f(), a @ a
    after, rest = [], []
    for _ in range(rounds):
        f()
        t0 = time.perf_counter()
        a @ a
        after.append(time.perf_counter() - t0)
        time.sleep(idle)
        t0 = time.perf_counter()
        a @ a
        rest.append(time.perf_counter() - t0)
    return statistics.median(after), statistics.median(rest)


def blas_description():
    """OpenBLAS's version / thread count as fastconv sees it (fastconv.blas_info())."""
    info = fastconv.blas_info()
    return "; ".join(f"{os.path.basename(i['library'])} num_threads={i['num_threads']} "
                     f"OPENBLAS_THREAD_TIMEOUT={i['thread_timeout']}" for i in info) or "no OpenBLAS found"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)
    libs = ["fastconv"]
    if not args.no_torch:
        try:
            import torch  # noqa: F401
            libs.append("torch")
        except ImportError:
            pass
    env = {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                      "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT")
           if k in os.environ}
    print(f"threads={args.threads} rounds={args.rounds} calls={args.calls}; env {env or '{}'}")
    print(f"BLAS: {blas_description()}; load average {os.getloadavg()}")
    print("| library | after a @ b (ms) | idle (ms) | ratio |")
    print("|---|---|---|---|")
    for lib, (busy, idle) in measure(libs, args.threads, args.rounds, args.calls).items():
        print(f"| {lib} | {busy * 1e3:.2f} | {idle * 1e3:.2f} | {busy / idle:.2f}x |")
    busy, idle = measure_reverse(args.threads, 4 * args.rounds)
    print(f"| NumPy 512 x 512 product after a fastconv call | {busy * 1e3:.2f} | {idle * 1e3:.2f} "
          f"| {busy / idle:.2f}x |")


if __name__ == "__main__":
    main()
