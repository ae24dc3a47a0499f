"""Data-parallel scaling on one machine: the whole `fastconv train` command, wall time.

    python benchmarks/distributed.py                      # vgg_small on shapes, 2 cores
    python benchmarks/distributed.py --model lenet5 --train-size 4000 --repeat 3

Runs, side by side and interleaved (so a change in the machine's load hits all
of them alike), R times each:

    1 rank  x 1 thread      fastconv train --threads 1 ...
    1 rank  x T threads     fastconv train --threads T ...
    N ranks x 1 thread      mpiexec -n N fastconv train --threads 1 ...

and prints the median wall time of each, the speed-ups, and the share of the
training time the N-rank run spent in the gradient allreduce (from its
per-epoch lines), with the time rank 0 waited for the slowest rank apart. Needs
`pip install "fastconv[mpi]"`. BLAS and OpenMP threads are pinned to the same
count as fastconv's, so each configuration uses exactly the cores it names.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _env(threads):
    env = dict(os.environ)
    for v in ("FASTCONV_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[v] = str(threads)
    return env


def _run(cmd, threads, cwd):
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=_env(threads), cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{res.stderr}")
    return wall, res.stdout


def _allreduce_share(stdout):
    """(transfer ms per step, its % of the epoch time, wait ms per step) averaged over
    the per-epoch lines."""
    found = re.findall(r"allreduce ([0-9.]+) ms/step \(([0-9.]+)%\), wait ([0-9.]+) ms/step", stdout)
    if not found:
        return None, None, None
    return tuple(statistics.mean(float(f[i]) for f in found) for i in range(3))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="vgg_small")
    p.add_argument("--dataset", default="shapes")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-size", type=int, default=4000)
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)

    mpiexec = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit('no mpiexec: pip install "fastconv[mpi]"')
    N = args.ranks
    train = [sys.executable, "-m", "fastconv", "train", "--model", args.model, "--dataset", args.dataset,
             "--epochs", str(args.epochs), "--train-size", str(args.train_size),
             "--test-size", str(args.test_size), "--batch-size", str(args.batch_size),
             "--no-save", "--no-progress"]
    configs = [
        ("1 rank  x 1 thread", train + ["--threads", "1"], 1),
        (f"1 rank  x {N} threads", train + ["--threads", str(N)], N),
        (f"{N} ranks x 1 thread", [mpiexec, "-n", str(N)] + train + ["--threads", "1"], 1),
    ]
    walls = {name: [] for name, _, _ in configs}
    shares = []
    print(f"{args.model} on {args.dataset}: {args.train_size} training images, {args.epochs} epoch(s), "
          f"batch {args.batch_size}; {args.repeat} runs of each, interleaved", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(args.repeat):
            for name, cmd, threads in configs:
                wall, out = _run(cmd, threads, scratch)
                walls[name].append(wall)
                if cmd[0] == mpiexec:
                    shares.append(_allreduce_share(out))
                print(f"  run {i + 1}: {name}: {wall:.1f} s", flush=True)
    base = statistics.median(walls[configs[0][0]])
    print(f"\n{'configuration':<22} {'median wall s':>14} {'speed-up vs 1x1':>16}")
    for name, _, _ in configs:
        med = statistics.median(walls[name])
        print(f"{name:<22} {med:>14.2f} {base / med:>15.2f}x")
    two, one2 = statistics.median(walls[configs[2][0]]), statistics.median(walls[configs[1][0]])
    print(f"\n{N} ranks x 1 thread vs 1 rank x {N} threads: {one2 / two:.2f}x")
    ms = [s for s in shares if s[0] is not None]
    if ms:
        print(f"allreduce (rank 0): {statistics.mean(s[0] for s in ms):.2f} ms/step, "
              f"{statistics.mean(s[1] for s in ms):.1f}% of the training time; waiting for the "
              f"other rank before it: {statistics.mean(s[2] for s in ms):.2f} ms/step")
    print("(whole command: data generation, training, evaluation; figures from a shared machine "
          "are noisy, run it on a quiet one)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
