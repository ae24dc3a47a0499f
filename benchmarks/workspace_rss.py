"""Peak extra memory of one convolution forward + backward, per benchmark layer.

For each layer of the benchmark layer set (fastconv/bench/cases.py) a fresh Python process allocates and
touches the inputs (x, w, b, dy), resets the kernel's peak-RSS mark
(/proc/self/clear_refs), runs ``conv2d`` then ``conv2d_backward`` once with
``algo="auto"`` (or the ``--algo`` given) and reads the peak (VmHWM). The
workspace is that peak minus the RSS before the call minus the outputs the
API must return (y, dx, dw, db). It is compared with the workspace bound: 64 MiB
or 1/8 of a whole-batch im2col buffer (N*C*R*S*P*Q elements), whichever is
larger. First-call costs (thread stacks, lazily loaded code) are included, so
the figure is an upper bound. Linux only.

    python benchmarks/workspace_rss.py [--threads 2] [--algo auto] [--cases a,b]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from fastconv.bench import CONV_CASES

CHILD = r"""
import json, sys
import numpy as np
import fastconv
from fastconv.bench import CONV_CASES

name, algo, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
fastconv.set_num_threads(threads)
N, C, H, W, K, R, S, stride, pad, groups = CONV_CASES[name]
rng = np.random.default_rng(0)
x = rng.standard_normal((N, C, H, W), dtype=np.float32)
w = rng.standard_normal((K, C // groups, R, S), dtype=np.float32)
b = rng.standard_normal(K, dtype=np.float32)
P = (H + 2 * pad - R) // stride + 1
Q = (W + 2 * pad - S) // stride + 1
dy = rng.standard_normal((N, K, P, Q), dtype=np.float32)

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field + " missing")

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")            # reset VmHWM to the current RSS
before = status("VmRSS")
y = fastconv.conv2d(x, w, b, stride=stride, padding=pad, groups=groups, algo=algo)
dx, dw, db = fastconv.conv2d_backward(dy, x, w, stride=stride, padding=pad, groups=groups, algo=algo)
peak = status("VmHWM")
outputs = y.nbytes + dx.nbytes + dw.nbytes + db.nbytes
im2col = N * C * R * S * P * Q * 4
print(json.dumps({"case": name, "extra": peak - before - outputs, "outputs": outputs,
                  "im2col": im2col, "bound": max(64 * 2**20, im2col // 8)}))
"""


def measure(name, algo="auto", threads=2):
    out = subprocess.run([sys.executable, "-c", CHILD, name, algo, str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--algo", default="auto")
    ap.add_argument("--cases", default="all")
    args = ap.parse_args(argv)
    names = list(CONV_CASES) if args.cases == "all" else args.cases.split(",")
    mib = 2.0**20
    print(f"conv forward + backward, float32, algo={args.algo}, {args.threads} threads\n")
    print("| layer | extra peak RSS MiB | outputs MiB | whole-batch im2col MiB | bound MiB | within |")
    print("|---|---|---|---|---|---|")
    ok = True
    for name in names:
        r = measure(name, args.algo, args.threads)
        within = r["extra"] <= r["bound"]
        ok &= within
        print(f"| {name} | {r['extra'] / mib:.1f} | {r['outputs'] / mib:.1f} | {r['im2col'] / mib:.1f} "
              f"| {r['bound'] / mib:.0f} | {'yes' if within else '**no**'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
