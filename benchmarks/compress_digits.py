"""int8 accuracy of a second small CNN on a second digits set: scikit-learn's 8x8 digits.

    pip install scikit-learn        # only for its bundled digits set (1,797 images)
    python benchmarks/compress_digits.py [--epochs 30] [--seeds 0,1,2]

Issue 13 asks that int8 quantization lose at most 0.5 accuracy points on "a
different small CNN on a different digits set" than LeNet-5 on MNIST. The set
is the UCI optical digits that ship inside scikit-learn (8x8, 17 grey levels,
no download); it is split 1,397 to train (and calibrate) on and 400 to
validate on, stratified by a fixed permutation. The network is a BatchNorm
CNN unlike LeNet-5: conv 1->16 3x3 pad 1, BN, ReLU, conv 16->32 3x3 pad 1,
BN, ReLU, max pool 2, conv 32->32 3x3 pad 1, ReLU, global average pool,
linear 32->10. For each seed it prints the float accuracy and the int8
accuracy with every calibration method (200 calibration images).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import fastconv
from fastconv import nn, optim
from fastconv.quantize import METHODS  # (the module; fastconv.quantize is the function)
from fastconv.train import Trainer


def digits_split():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("compress_digits.py needs scikit-learn for its bundled digits set: "
                 "pip install scikit-learn")
    d = load_digits()
    X = (d.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    X = (X - X.mean()) / X.std()
    y = d.target.astype(np.int64)
    order = np.random.default_rng(1234).permutation(len(y))
    X, y = X[order], y[order]
    return X[:-400], y[:-400], X[-400:], y[-400:]


def small_cnn(seed):
    s = np.random.SeedSequence(seed).generate_state(4)
    return nn.Sequential(
        nn.Conv2D(1, 16, 3, padding=1, seed=int(s[0])), nn.BatchNorm2D(16), nn.ReLU(),
        nn.Conv2D(16, 32, 3, padding=1, seed=int(s[1])), nn.BatchNorm2D(32), nn.ReLU(),
        nn.MaxPool2D(2),
        nn.Conv2D(32, 32, 3, padding=1, seed=int(s[2])), nn.ReLU(),
        nn.GlobalAvgPool2D(), nn.Flatten(),
        nn.Linear(32, 10, seed=int(s[3])),
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    a = ap.parse_args(argv)
    if a.epochs < 1:
        ap.error("--epochs must be at least 1")
    try:
        seeds = [int(s) for s in a.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds expects comma-separated integers, got {a.seeds!r}")
    Xtr, ytr, Xv, yv = digits_split()
    t0 = time.time()
    print(f"{'seed':>4} {'float32':>9} " + " ".join(f"{'int8 ' + m:>17}" for m in METHODS))
    worst = 0.0
    for seed in seeds:
        m = small_cnn(seed)
        opt = optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
        Trainer(m, nn.SoftmaxCrossEntropy(), opt, scheduler=optim.CosineLR(opt, T_max=a.epochs),
                progress=False).fit((Xtr, ytr), epochs=a.epochs, batch_size=32, seed=seed)
        base = float(np.mean(m.eval().forward(Xv).argmax(1) == yv))
        cells = []
        for method in METHODS:
            q = fastconv.quantize(m, Xtr[:200], method=method)
            acc = float(np.mean(q.forward(Xv).argmax(1) == yv))
            worst = max(worst, 100 * (base - acc))
            cells.append(f"{100 * acc:8.2f}% ({100 * (acc - base):+5.2f})")
        print(f"{seed:>4} {100 * base:8.2f}% " + " ".join(cells))
    print(f"largest int8 loss: {worst:.2f} points (target: at most 0.5); {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
