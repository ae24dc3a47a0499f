"""Accuracy of compressed LeNet-5s on MNIST (the 10,000-image test split, as 8,000 to
train on and 2,000 to validate on: it is the split this machine has).

    python benchmarks/compress_accuracy.py --data-dir /path/to/mnist

Prints the float model's validation accuracy and, against it: int8 with each
calibration method (1,000 training images), structured and unstructured pruning
of half the channels / weights before and after one epoch of fine-tuning, and a
binary-weight LeNet-5 trained from scratch. The same checks, with their
thresholds, are the slow tests in tests/test_quantize.py, test_prune.py and
test_binarize.py.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastconv
from fastconv import data, models, nn, optim
from fastconv.quantize import METHODS  # (the module; fastconv.quantize is the function)
from fastconv.train import Trainer


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="/work/shared/data/mnist")
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args(argv)
    X, y = data.mnist(root=args.data_dir, split="test", download=False)
    Xtr, ytr, Xv, yv = X[:8000], y[:8000], X[8000:], y[8000:]

    def acc(m):
        return float(np.mean(m.eval().forward(Xv).argmax(1) == yv))

    def fit(m, opt, epochs, sched=None, seed=0):
        Trainer(m, nn.SoftmaxCrossEntropy(), opt, scheduler=sched, progress=False).fit(
            (Xtr, ytr), epochs=epochs, batch_size=64, seed=seed)

    t0 = time.time()
    m = models.lenet5(seed=0)
    opt = optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    fit(m, opt, args.epochs, optim.CosineLR(opt, T_max=args.epochs))
    base = acc(m)
    rows = [("float32 LeNet-5", base)]
    for method in METHODS:
        rows.append((f"int8 ({method})", acc(fastconv.quantize(m, Xtr[:1000], method=method))))
    for structured in (True, False):
        p = fastconv.prune(m, 0.5, structured=structured)
        name = "pruned 50% " + ("channels" if structured else "weights")
        rows.append((name + ", no fine-tuning", acc(p)))
        fit(p, optim.SGD(p.parameters(), lr=0.01, momentum=0.9), 1, seed=1)
        rows.append((name + ", 1 epoch fine-tuned", acc(p)))
        q = fastconv.quantize(p, Xtr[:1000])
        rows.append((name + ", fine-tuned, then int8", acc(q)))
    b = fastconv.binarize(models.lenet5(seed=0))
    opt = optim.Adam(b.parameters(), lr=1e-3)
    fit(b, opt, 5, optim.CosineLR(opt, T_max=5))
    rows.append(("binary weights, trained from scratch (5 epochs, Adam)", acc(b)))
    print(f"{'model':<58}{'val accuracy':>13}{'vs float':>10}")
    for name, a in rows:
        print(f"{name:<58}{100 * a:12.2f}%{100 * (a - base):+9.2f}")
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
