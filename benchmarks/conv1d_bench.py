"""conv1d against PyTorch on a long sequence: forward, and forward + backward.

    python benchmarks/conv1d_bench.py [--n 16] [--c 64] [--l 4000] [--k 64] [--r 9] [--reps 7]

Both run on the same threads (torch.set_num_threads = fastconv's), float32, padding
"same"; A and B are interleaved and the best of ``reps`` runs is kept (shared
machines are noisy). Prints milliseconds and fastconv's speed-up.
"""

import argparse
import time

import numpy as np

import fastconv


def best(fns, reps):
    times = [[] for _ in fns]
    for _ in range(reps):
        for t, fn in zip(times, fns):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [min(t) * 1e3 for t in times]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("n", 16), ("c", 64), ("l", 4000), ("k", 64), ("r", 9), ("reps", 7)):
        ap.add_argument(f"--{name}", type=int, default=default)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.n, a.c, a.l)).astype(np.float32)
    w = (rng.standard_normal((a.k, a.c, a.r)) / np.sqrt(a.c * a.r)).astype(np.float32)
    b = np.zeros(a.k, np.float32)
    dy = rng.standard_normal((a.n, a.k, a.l)).astype(np.float32)

    def fc_fwd():
        fastconv.conv1d(x, w, b, padding="same")

    def fc_fwd_bwd():
        fastconv.conv1d(x, w, b, padding="same")
        fastconv.conv1d_backward(dy, x, w, padding="same")

    fns = [fc_fwd, fc_fwd_bwd]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(fastconv.get_num_threads())
        xt, wt, bt, dyt = (torch.from_numpy(v) for v in (x, w, b, dy))
        xr, wr, br = (v.clone().requires_grad_() for v in (xt, wt, bt))

        def t_fwd():
            with torch.no_grad():
                torch.nn.functional.conv1d(xt, wt, bt, padding="same")

        def t_fwd_bwd():
            y = torch.nn.functional.conv1d(xr, wr, br, padding="same")
            y.backward(dyt)

        fns += [t_fwd, t_fwd_bwd]
        ref = torch.nn.functional.conv1d(xt, wt, bt, padding="same").numpy()
        np.testing.assert_allclose(fastconv.conv1d(x, w, b, padding="same"), ref,
                                   rtol=1e-3, atol=1e-3)
    ms = best(fns, a.reps)
    print(f"conv1d x=({a.n}, {a.c}, {a.l}) w=({a.k}, {a.c}, {a.r}) float32, "
          f"{fastconv.get_num_threads()} threads, best of {a.reps} (ms)")
    print(f"  fastconv  forward {ms[0]:8.2f}   forward+backward {ms[1]:8.2f}")
    if torch is not None:
        print(f"  PyTorch   forward {ms[2]:8.2f}   forward+backward {ms[3]:8.2f}   "
              f"(torch {torch.__version__})")
        print(f"  speed-up  forward {ms[2] / ms[0]:8.2f}x  forward+backward {ms[3] / ms[1]:8.2f}x")


if __name__ == "__main__":
    main()
