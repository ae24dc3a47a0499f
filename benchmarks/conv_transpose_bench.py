"""conv_transpose2d against PyTorch on the transposed benchmark layers.

    python benchmarks/conv_transpose_bench.py [--cases lenet_c1,resnet_3x3] [--threads 2] [--reps 7]

Each convolution of the benchmark layer set (``fastconv.bench.cases.CONV_CASES``)
is turned around: the transposed convolution takes the convolution's output
shape (N, K, P, Q) back to its input shape (N, C, H, W) with the same weight
array, which PyTorch's layout (in, out/groups, kh, kw) reads as (K, C/groups,
R, S); ``output_padding`` restores H and W where the stride drops a remainder.
Forward, and forward + backward (dx, dw, db), float32, on the same threads as
PyTorch (torch.set_num_threads = fastconv's). The implementations are
interleaved and the best of ``reps`` runs is kept (shared machines are noisy).
The outputs are compared with PyTorch's before any timing.
"""

import argparse
import time

import numpy as np

import fastconv
from fastconv.bench.cases import CONV_CASES


def best(fns, reps):
    times = [[] for _ in fns]
    for _ in range(reps):
        for t, fn in zip(times, fns):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [min(t) * 1e3 for t in times]


def transposed_case(name, rng):
    N, C, H, W, K, R, S, stride, pad, groups = CONV_CASES[name]
    P = (H + 2 * pad - R) // stride + 1
    Q = (W + 2 * pad - S) // stride + 1
    oph = H - ((P - 1) * stride - 2 * pad + R)
    opw = W - ((Q - 1) * stride - 2 * pad + S)
    x = rng.standard_normal((N, K, P, Q)).astype(np.float32)
    w = (rng.standard_normal((K, C // groups, R, S)) / np.sqrt(K * R * S / groups)).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    dy = rng.standard_normal((N, C, H, W)).astype(np.float32)
    kw = dict(stride=stride, padding=pad, output_padding=(oph, opw), groups=groups)
    return x, w, b, dy, kw


def run_case(name, reps, torch):
    x, w, b, dy, kw = transposed_case(name, np.random.default_rng(0))

    def fc_fwd():
        fastconv.conv_transpose2d(x, w, b, **kw)

    def fc_fwd_bwd():
        fastconv.conv_transpose2d(x, w, b, **kw)
        fastconv.conv_transpose2d_backward(dy, x, w, **kw)

    fns = [fc_fwd, fc_fwd_bwd]
    if torch is not None:
        F = torch.nn.functional
        xt, wt, bt, dyt = (torch.from_numpy(v) for v in (x, w, b, dy))
        xr, wr, br = (v.clone().requires_grad_() for v in (xt, wt, bt))

        def t_fwd():
            with torch.no_grad():
                F.conv_transpose2d(xt, wt, bt, **kw)

        def t_fwd_bwd():
            xr.grad = wr.grad = br.grad = None
            F.conv_transpose2d(xr, wr, br, **kw).backward(dyt)

        ref = F.conv_transpose2d(xt, wt, bt, **kw).numpy()
        got = fastconv.conv_transpose2d(x, w, b, **kw)
        scale = max(1.0, float(np.abs(ref).max()))
        if not np.allclose(got, ref, rtol=1e-3, atol=1e-4 * scale):
            raise SystemExit(f"{name}: fastconv and PyTorch disagree "
                             f"(max |diff| {np.abs(got - ref).max():.3g})")
        fns += [t_fwd, t_fwd_bwd]
    return best(fns, reps)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="all",
                    help="comma-separated names from the benchmark layer set, or 'all'")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for fastconv and PyTorch (default: fastconv's default)")
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args(argv)
    names = list(CONV_CASES) if a.cases == "all" else a.cases.split(",")
    unknown = [n for n in names if n not in CONV_CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; expected names from {', '.join(CONV_CASES)}")
    if a.reps < 1:
        ap.error("--reps must be at least 1")
    if a.threads is not None:
        fastconv.set_num_threads(a.threads)
    try:
        import torch
    except ImportError:
        torch = None
    else:
        torch.set_num_threads(fastconv.get_num_threads())
    print(f"conv_transpose2d, float32, {fastconv.get_num_threads()} threads, best of {a.reps} (ms)"
          + (f", torch {torch.__version__}" if torch is not None else ", PyTorch not installed"))
    print()
    print("| layer (transposed) | fastconv fwd | torch fwd | vs torch | "
          "fastconv fwd+bwd | torch fwd+bwd | vs torch |")
    print("|---|---|---|---|---|---|---|")
    ratios = []
    for name in names:
        ms = run_case(name, a.reps, torch)
        if torch is None:
            print(f"| {name} | {ms[0]:.3f} | - | - | {ms[1]:.3f} | - | - |")
            continue
        ratios.append(ms[3] / ms[1])
        print(f"| {name} | {ms[0]:.3f} | {ms[2]:.3f} | {ms[2] / ms[0]:.2f}x | "
              f"{ms[1]:.3f} | {ms[3]:.3f} | {ms[3] / ms[1]:.2f}x |", flush=True)
    if ratios:
        geo = float(np.exp(np.mean(np.log(ratios))))
        print(f"\nfwd+bwd vs torch: geomean {geo:.2f}x, lowest {min(ratios):.2f}x")


if __name__ == "__main__":
    main()
