"""Training steps of fastconv and PyTorch alternated call by call in one process.

`python -m fastconv.bench --cases train` times each library's step in its own burst of
samples, so a slow spell of a shared machine can fall on one library and not the other
(on the 2-core development VM, back-to-back runs of it gave LeNet-5 anywhere from 1.3x to
2.1x). Here every fastconv step is followed by a PyTorch step on the same batch, for a
fixed number of seconds, and the medians are compared, together with the median of the
per-pair ratios (each pair shares the machine's state of that moment). The steps are the
benchmark's own (`fastconv.bench.impls.train_impls`: batch 64, SGD with momentum, softmax
cross-entropy). Run from the repository root:

    python benchmarks/train_interleaved.py --models lenet5,vgg_small,resnet_small --seconds 20

Needs torch. Nothing here asserts a timing.
"""
import argparse
import sys
import time

import numpy as np

import fastconv
from fastconv.bench.cases import TRAIN_BATCH, TRAIN_CASES
from fastconv.bench.impls import train_impls


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(TRAIN_CASES),
                    help=f"comma-separated, from {', '.join(TRAIN_CASES)}")
    ap.add_argument("--seconds", type=float, default=20.0, help="alternating time per model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps of each library first")
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in TRAIN_CASES]
    if not models or unknown:
        ap.error(f"--models: unknown {', '.join(unknown) or '(none given)'}; "
                 f"choose from {', '.join(TRAIN_CASES)}")
    if not args.seconds > 0:
        ap.error(f"--seconds must be positive, got {args.seconds}")
    if args.threads < 1:
        ap.error(f"--threads must be at least 1, got {args.threads}")
    if args.warmup < 0:
        ap.error(f"--warmup must be 0 or more, got {args.warmup}")
    args.models = models
    return args


def main(argv=None):
    args = _args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("train_interleaved.py needs torch (pip install torch) to compare with")
    fastconv.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"fastconv {fastconv.__version__}, torch {torch.__version__}, threads {args.threads}, "
          f"{args.seconds:g} s per model\n")
    print("| training step, batch %d, %d threads | fastconv img/s | torch img/s | vs torch "
          "(medians) | median of pair ratios | steps |" % (TRAIN_BATCH, args.threads))
    print("|---|---|---|---|---|---|")
    for name in args.models:
        impls, notes = train_impls(name, torch)
        ours, theirs = impls["fastconv"], impls["torch"]
        for _ in range(args.warmup):
            ours()
            theirs()
        t_ours, t_theirs = [], []
        end = time.perf_counter() + args.seconds
        while time.perf_counter() < end or not t_ours:
            a = time.perf_counter()
            ours()
            b = time.perf_counter()
            theirs()
            c = time.perf_counter()
            t_ours.append(b - a)
            t_theirs.append(c - b)
        t_ours, t_theirs = np.array(t_ours), np.array(t_theirs)
        mo, mt = float(np.median(t_ours)), float(np.median(t_theirs))
        print(f"| {name} | {TRAIN_BATCH / mo:,.0f} | {TRAIN_BATCH / mt:,.0f} | {mt / mo:.2f}x | "
              f"{float(np.median(t_theirs / t_ours)):.2f}x | {len(t_ours)} |")
    print(f"\n{' '.join(['python'] + sys.argv)}")


if __name__ == "__main__":
    main()
