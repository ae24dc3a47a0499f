"""Leak check: call every public function many times and watch the resident set size.

Memory that the kernels (or their bindings) leak per call shows up as RSS that
keeps growing after a warm-up. Exits 1 if RSS grows by more than the allowance
over the measured rounds. Run by tools/sanitize.sh; also runnable on its own:

    python tools/leakcheck.py [--rounds 5] [--calls 200]
"""

import argparse
import gc
import os
import sys

import numpy as np

import fastconv


def rss_bytes():
    # the kernels' workspace cache holds freed blocks on purpose: hand them back
    # first, so only memory that nothing can reach any more is counted
    fastconv.release_workspace()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def one_pass(rng):
    x = rng.standard_normal((4, 6, 17, 15)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    for algo in ("im2col", "direct", "gemm", "winograd", "auto"):
        y = fastconv.conv2d(x, w, b, padding=1, groups=2, algo=algo)
        fastconv.conv2d_backward(y, x, w, padding=1, groups=2, algo=algo)
    y = fastconv.conv2d(x, w, b, stride=2, padding=1, groups=2, algo="gemm")   # strided paths
    fastconv.conv2d_backward(y, x, w, stride=2, padding=1, groups=2, algo="gemm")
    xl = x.reshape(4, -1)
    wl = rng.standard_normal((7, xl.shape[1])).astype(np.float32)
    fastconv.linear_backward(fastconv.linear(xl, wl, b[:7]), xl, wl)
    p, idx = fastconv.max_pool2d(x, 3, 2, 1, return_indices=True)
    fastconv.max_pool2d_backward(p, idx, x.shape)
    a = fastconv.avg_pool2d(x, 2, ceil_mode=True)
    fastconv.avg_pool2d_backward(a, x.shape, 2, ceil_mode=True)
    cols = fastconv.im2col(x, 3, padding=1)
    fastconv.col2im(cols, x.shape[2:], 3, padding=1)
    fastconv.relu_backward(x, fastconv.relu(x))
    # Error paths must not leak either (the last: an unknown algorithm id, refused by
    # the C entry point after the binding took its buffers).
    geom = fastconv._kernels.ConvGeom(4, 6, 17, 15, 8, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1)
    yflat = np.empty(4 * 8 * 17 * 15, np.float32)
    for bad in (lambda: fastconv.conv2d(x, w[:, :2]), lambda: fastconv.max_pool2d(x, 0),
                lambda: fastconv._kernels.conv2d_fwd(99, geom, x.reshape(-1), w.reshape(-1), b,
                                                     yflat, 1)):
        try:
            bad()
        except (ValueError, TypeError):
            pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--allow-mib", type=float, default=8.0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    for _ in range(args.calls):          # warm-up: allocator pools, caches
        one_pass(rng)
    gc.collect()
    start = rss_bytes()
    sizes = []
    for _ in range(args.rounds):
        for _ in range(args.calls):
            one_pass(rng)
        gc.collect()
        sizes.append(rss_bytes())
    # a leak grows every round; allocator noise goes up and down, so the lower
    # of the last two rounds is compared with the start
    growth = (min(sizes[-2:]) - start) / 2**20
    print(f"leakcheck: RSS {start / 2**20:.1f} MiB -> "
          + " -> ".join(f"{s / 2**20:.1f}" for s in sizes)
          + f" MiB over {args.rounds * args.calls} passes (growth {growth:+.2f} MiB)")
    if growth > args.allow_mib:
        print(f"leakcheck: FAIL, RSS grew by {growth:.2f} MiB (> {args.allow_mib} MiB)")
        return 1
    print("leakcheck: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
