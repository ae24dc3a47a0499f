"""``fastconv compress``: prune and / or quantize a saved model, report accuracy, size
and speed before and after, and save the result.

    fastconv compress model.npz --int8 --dataset mnist --data-dir DIR
    fastconv compress model.npz --prune 0.5 --finetune-epochs 1 --int8 --dataset shapes

The model file must say how to build its network (``fastconv train`` saves that).
Pruning (:func:`fastconv.prune`) comes first and is fine-tuned on the training
split (SGD with momentum); int8 quantization (:func:`fastconv.quantize`) is
calibrated on the first ``--calibration`` training images. Accuracy is measured
on the test split, speed as images per second of ``forward`` on it (best of
``--repeat`` passes, batch ``--batch-size``), size as the saved file's bytes.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import data, nn, optim
from .._runtime import get_num_threads, set_num_threads
from ..checkpoint import CheckpointError, load_model, save_model
from ..prune import prune, sparsity
from ..qlayers import fmt_bytes
from ..quantize import METHODS, quantize
from ..train import Trainer
from ._common import CLIError, nonneg_int, one_line, positive_float, positive_int

__all__ = ["add_parser", "run"]

DATASETS = ("shapes", "mnist", "fashion_mnist", "cifar10")


def _fraction(text):
    v = float(text)
    if not 0.0 <= v < 1.0:
        raise ValueError(text)
    return v


def add_parser(sub):
    p = sub.add_parser(
        "compress",
        help="prune and/or quantize a saved model to int8; report accuracy, size and speed",
        description=__doc__.split("\n\n")[0] + ".",
    )
    p.add_argument("model", metavar="MODEL.npz", help="a model saved by `fastconv train`")
    p.add_argument("--int8", action="store_true", help="quantize to int8 (post-training)")
    p.add_argument("--calibration", type=positive_int, default=512, metavar="N",
                   help="training images used to calibrate the int8 ranges (default: 512)")
    p.add_argument("--method", choices=METHODS, default="minmax",
                   help="int8 calibration method (default: minmax)")
    p.add_argument("--prune", type=_fraction, default=None, metavar="FRACTION",
                   help="remove this fraction of every layer's channels (0 <= FRACTION < 1)")
    p.add_argument("--unstructured", action="store_true",
                   help="prune single weights (kept at zero) instead of whole channels")
    p.add_argument("--finetune-epochs", type=nonneg_int, default=1, metavar="E",
                   help="epochs of fine-tuning after pruning (default: 1)")
    p.add_argument("--lr", type=positive_float, default=0.01,
                   help="fine-tuning learning rate, SGD with momentum 0.9 (default: 0.01)")
    p.add_argument("--dataset", choices=DATASETS, default="shapes",
                   help="the data the model was trained on (default: shapes, built in)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where the downloadable datasets live")
    p.add_argument("--no-download", action="store_true", help="never download the dataset")
    p.add_argument("--train-size", type=positive_int, default=None, metavar="N",
                   help="use only the first N training images (fine-tuning, calibration)")
    p.add_argument("--test-size", type=positive_int, default=None, metavar="N",
                   help="use only the first N test images")
    p.add_argument("--batch-size", type=positive_int, default=64,
                   help="batch for fine-tuning and timing (default: 64)")
    p.add_argument("--repeat", type=positive_int, default=3, help="timing passes (default: 3)")
    p.add_argument("--threads", type=positive_int, default=None, help="kernel threads")
    p.add_argument("--seed", type=nonneg_int, default=0, help="fine-tuning seed (default: 0)")
    p.add_argument("--save", default=None, metavar="PATH",
                   help="where to save the compressed model (default: MODEL-<kind>.npz)")
    p.add_argument("--no-save", action="store_true", help="do not save the compressed model")
    return p


def _load_data(args):
    root = Path(args.data_dir).expanduser() if args.data_dir else None
    try:
        train = data.load(args.dataset, "train", root=root, download=not args.no_download)
        test = data.load(args.dataset, "test", root=root, download=not args.no_download)
    except (ConnectionError, FileNotFoundError, ValueError, OSError) as exc:
        raise CLIError(f"cannot load the {args.dataset} dataset: {one_line(exc)}") from None
    if args.train_size:
        train = (train[0][: args.train_size], train[1][: args.train_size])
    if args.test_size:
        test = (test[0][: args.test_size], test[1][: args.test_size])
    return train, test


def _accuracy(model, X, y, batch=256):
    model.eval()
    correct = sum(int(np.count_nonzero(model.forward(X[i:i + batch]).argmax(1) == y[i:i + batch]))
                  for i in range(0, len(X), batch))
    return correct / len(X)


def _speed(model, X, batch, repeat):
    """Images per second of model.forward over X (best of ``repeat`` passes)."""
    model.eval()
    n = min(len(X), max(batch, 1024))
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for i in range(0, n, batch):
            model.forward(np.ascontiguousarray(X[i:i + batch]))
        best = min(best, time.perf_counter() - t)
    return n / best


def _file_bytes(model):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.npz")
        save_model(model, path)
        return os.path.getsize(path)


def run(args):
    if not args.int8 and args.prune is None:
        raise CLIError("nothing to do: give --int8 and/or --prune FRACTION")
    if args.threads is not None:
        set_num_threads(args.threads)
    path = Path(args.model)
    try:
        model = load_model(path)
    except (OSError, CheckpointError, ValueError, TypeError) as exc:
        raise CLIError(f"cannot load {path}: {one_line(exc)}") from None
    if model.dtype != np.float32:
        model.to(np.float32)
    (X, y), (Xt, yt) = _load_data(args)
    X, Xt = X.astype(np.float32, copy=False), Xt.astype(np.float32, copy=False)

    kinds = []
    print(f"fastconv compress: {path} on {args.dataset} ({len(X):,} training / {len(Xt):,} test "
          f"images), {get_num_threads()} threads")
    result = {"float32": (model, _accuracy(model, Xt, yt))}
    cur = model
    if args.prune is not None:
        structured = not args.unstructured
        kinds.append(f"pruned{int(round(100 * args.prune))}" + ("" if structured else "u"))
        cur = prune(cur, args.prune, structured=structured)
        if args.finetune_epochs:
            opt = optim.SGD(cur.parameters(), lr=args.lr, momentum=0.9)
            Trainer(cur, nn.SoftmaxCrossEntropy(), opt, progress=False).fit(
                (X, y), epochs=args.finetune_epochs, batch_size=args.batch_size, seed=args.seed)
        what = f"pruned {args.prune:.0%} ({'channels' if structured else 'weights'}), " \
               f"{args.finetune_epochs} epoch(s) fine-tuned"
        if not structured:
            what += f", {100 * sparsity(cur):.0f}% zero weights"
        result[what] = (cur, _accuracy(cur, Xt, yt))
    if args.int8:
        kinds.append("int8")
        cur = quantize(cur, X[: args.calibration], method=args.method)
        result[f"int8 ({args.method}, {min(args.calibration, len(X))} calibration images)"] = (
            cur, _accuracy(cur, Xt, yt))

    base_acc, base_bytes = result["float32"][1], _file_bytes(model)
    base_speed = _speed(model, Xt, args.batch_size, args.repeat)
    print(f"\n{'model':<64}{'accuracy':>10}{'size':>11}{'images/s':>11}")
    for name, (m, acc) in result.items():
        nbytes = base_bytes if m is model else _file_bytes(m)
        speed = base_speed if m is model else _speed(m, Xt, args.batch_size, args.repeat)
        extra = "" if m is model else (f"  ({100 * (acc - base_acc):+.2f} pts, "
                                       f"{nbytes / base_bytes:.2f}x size, {speed / base_speed:.2f}x speed)")
        print(f"{name:<64}{100 * acc:9.2f}%{fmt_bytes(nbytes):>11}{speed:11,.0f}{extra}")
    if not args.no_save:
        out = Path(args.save) if args.save else path.with_name(f"{path.stem}-{'-'.join(kinds)}.npz")
        try:
            save_model(cur, out, metadata={"compressed_from": str(path), "dataset": args.dataset,
                                           "test_accuracy": result[list(result)[-1]][1]})
        except OSError as exc:
            raise CLIError(f"cannot save the model to {out}: {one_line(exc)}") from None
        print(f"\ncompressed model saved to {out} (load it with fastconv.train.load_model)")
    return 0
