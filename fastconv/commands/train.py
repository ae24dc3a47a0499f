"""``fastconv train``: train a CNN on a dataset, report test accuracy and throughput, save it."""

from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path

import numpy as np

from .. import data, nn, optim, plotting
from .._version import __version__
from .._runtime import get_num_threads, set_num_threads
from ..models import MODELS
from ..train import Trainer, save_model
from ._common import CLIError, nonneg_int, one_line, positive_float, positive_int
from ._malloc import keep_freed_memory

__all__ = ["TRAIN_DEFAULTS", "DATASETS", "add_parser", "run", "load_data", "build_model"]

#: Defaults of ``fastconv train``: chosen so that LeNet-5 on the shapes set
#: passes 90% test accuracy with a wide margin in a short run on 2 cores.
TRAIN_DEFAULTS = {
    "epochs": 3,
    "batch_size": 64,
    "sgd_lr": 0.05,
    "adam_lr": 1e-3,
    "momentum": 0.9,
    "shapes_train": 8000,
    "shapes_test": 2000,
}

DATASETS = ("shapes", "mnist", "fashion_mnist", "cifar10")

#: dataset -> name of its class-name list in fastconv.data
_CLASS_NAMES = {"shapes": "SHAPES_CLASSES", "mnist": "MNIST_CLASSES",
                "fashion_mnist": "FASHION_MNIST_CLASSES", "cifar10": "CIFAR10_CLASSES"}


def add_parser(sub):
    d = TRAIN_DEFAULTS
    p = sub.add_parser(
        "train",
        help="train a CNN and save it (default: LeNet-5 on the built-in shapes set)",
        description=(
            "Train a CNN on a dataset, print per-epoch progress, the test accuracy and the "
            "training throughput, and save the model. With no options: LeNet-5 on the built-in "
            f"shapes set ({d['shapes_train']:,} training / {d['shapes_test']:,} test images drawn "
            "on the fly, no download)."
        ),
    )
    p.add_argument("--model", choices=sorted(MODELS), default=None,
                   help="network (default: lenet5; vgg_small for cifar10). Every model adapts to "
                        "the dataset's channels, image size and classes")
    p.add_argument("--dataset", choices=DATASETS, default="shapes",
                   help="dataset (default: shapes, built in; the others are downloaded into "
                        "--data-dir when missing)")
    p.add_argument("--epochs", type=positive_int, default=d["epochs"],
                   help=f"number of epochs (default: {d['epochs']})")
    p.add_argument("--batch-size", type=positive_int, default=d["batch_size"],
                   help=f"mini-batch size (default: {d['batch_size']})")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="sgd (with momentum) or adam (default: sgd)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help=f"learning rate (default: {d['sgd_lr']} for sgd, {d['adam_lr']} for adam), "
                        "annealed to zero over the run by a cosine schedule")
    p.add_argument("--momentum", type=float, default=d["momentum"],
                   help=f"SGD momentum (default: {d['momentum']})")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads for the native kernels (default: fastconv's default, see `fastconv info`)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where the downloadable datasets live (default: $FASTCONV_DATA/<dataset> "
                        "or ~/.cache/fastconv/<dataset>)")
    p.add_argument("--no-download", action="store_true",
                   help="never download: fail if the dataset files are not in --data-dir")
    p.add_argument("--save", default=None, metavar="PATH",
                   help="where to save the trained model (default: ./fastconv-<model>-<dataset>.npz)")
    p.add_argument("--no-save", action="store_true", help="do not save the model")
    p.add_argument("--plot", default=None, metavar="DIR",
                   help='write PNG figures into DIR: learning curves, first-layer filters and the '
                        'feature maps of one test image (needs pip install "fastconv[plot]")')
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="write a resumable checkpoint to PATH after every epoch")
    p.add_argument("--resume", default=None, metavar="PATH",
                   help="continue a run from a checkpoint written by --checkpoint (same options)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default: 0)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="parameter and data type (default: float32)")
    p.add_argument("--train-size", type=positive_int, default=None, metavar="N",
                   help=f"training images: for shapes, how many to draw (default: {d['shapes_train']:,}); "
                        "for the other datasets, use only the first N of the training split")
    p.add_argument("--test-size", type=positive_int, default=None, metavar="N",
                   help=f"test images, likewise (default for shapes: {d['shapes_test']:,})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    return p


def load_data(args):
    """((X_train, y_train), (X_test, y_test), number of classes) for the chosen dataset and sizes."""
    if args.dataset == "shapes":
        n_train = args.train_size or TRAIN_DEFAULTS["shapes_train"]
        n_test = args.test_size or TRAIN_DEFAULTS["shapes_test"]
        train, test = data.shapes_split(n_train, n_test, seed=args.seed)
    else:
        loader = {"mnist": data.mnist, "fashion_mnist": data.fashion_mnist, "cifar10": data.cifar10}[args.dataset]
        root = Path(args.data_dir).expanduser() if args.data_dir else None
        download = not args.no_download
        train = loader(root=root, split="train", download=download)
        test = loader(root=root, split="test", download=download)
        if args.train_size:
            train = (train[0][: args.train_size], train[1][: args.train_size])
        if args.test_size:
            test = (test[0][: args.test_size], test[1][: args.test_size])
    classes = getattr(data, _CLASS_NAMES[args.dataset], None)
    num_classes = len(classes) if classes else int(max(train[1].max(), test[1].max())) + 1
    return train, test, num_classes


def build_model(name, X, num_classes, dtype, seed):
    """(model, builder kwargs): the :mod:`fastconv.models` network ``name`` sized for
    images like ``X`` (N, C, H, W) and ``num_classes`` classes."""
    _, C, H, W = X.shape
    builder = MODELS[name]
    kwargs = {"in_channels": int(C), "num_classes": int(num_classes)}
    if "input_size" in inspect.signature(builder).parameters:
        if H != W:
            raise CLIError(f"{name} needs square images, the dataset has {H}x{W}")
        kwargs["input_size"] = int(H)
    try:
        model = builder(**kwargs, dtype=dtype, seed=seed)
    except ValueError as exc:
        raise CLIError(f"cannot build {name} for {C}x{H}x{W} images: {one_line(exc)}") from None
    return model, kwargs


def _optimizer(args, model):
    """(optimiser, its one-line description) for the chosen options."""
    lr = args.lr if args.lr is not None else TRAIN_DEFAULTS[f"{args.optimizer}_lr"]
    if args.optimizer == "sgd":
        return (optim.SGD(model.parameters(), lr=lr, momentum=args.momentum),
                f"SGD lr {lr:g} momentum {args.momentum:g}")
    return optim.Adam(model.parameters(), lr=lr), f"Adam lr {lr:g}"


def run(args):
    keep_freed_memory()
    model_name = args.model or ("vgg_small" if args.dataset == "cifar10" else "lenet5")
    if args.plot:
        try:
            plotting.require_matplotlib()  # fail before training, not after it
        except plotting.MissingMatplotlib as exc:
            raise CLIError(str(exc)) from None
    if args.threads is not None:
        set_num_threads(args.threads)
    dtype = np.dtype(args.dtype)
    save_path = None
    if not args.no_save:
        save_path = Path(args.save) if args.save else Path(f"fastconv-{model_name}-{args.dataset}.npz")

    t_start = time.perf_counter()
    try:
        (X, y), (Xt, yt), num_classes = load_data(args)
    except (ConnectionError, FileNotFoundError, ValueError, OSError) as exc:
        raise CLIError(f"cannot load the {args.dataset} dataset: {one_line(exc)}") from None
    if dtype != X.dtype:
        X, Xt = X.astype(dtype), Xt.astype(dtype)
    model, model_kwargs = build_model(model_name, X, num_classes, dtype, args.seed)

    opt, opt_text = _optimizer(args, model)
    sched = optim.CosineLR(opt, T_max=args.epochs)
    trainer = Trainer(model, nn.SoftmaxCrossEntropy(), opt, scheduler=sched, progress=not args.no_progress)

    _, C, H, W = X.shape
    nt = get_num_threads()
    print(f"fastconv {__version__}: training {model_name} on {args.dataset} "
          f"({len(X):,} training / {len(Xt):,} test images of {C}x{H}x{W}, {num_classes} classes)")
    print(f"  {model.num_parameters():,} parameters, {args.epochs} epochs, batch {args.batch_size}, "
          f"{opt_text} (cosine schedule), {nt} thread{'s' if nt != 1 else ''}, {dtype.name}")
    sys.stdout.flush()

    try:
        history = trainer.fit((X, y), epochs=args.epochs, batch_size=args.batch_size, val=(Xt, yt),
                              seed=args.seed, checkpoint=args.checkpoint, resume=args.resume)
    except FloatingPointError as exc:
        raise CLIError(one_line(exc)) from None
    except (FileNotFoundError, ValueError) as exc:
        if args.resume:
            raise CLIError(f"cannot resume from {args.resume}: {one_line(exc)}") from None
        raise
    result = trainer.evaluate((Xt, yt))
    print(f"test accuracy: {100 * result['accuracy']:.2f}% ({result['n']:,} images, loss {result['loss']:.4f})")
    print(f"training throughput: {history.images_per_second:,.0f} images/second")
    if save_path is not None:
        meta = {"builder": model_name, "kwargs": dict(model_kwargs, dtype=dtype.name),
                "dataset": args.dataset, "test_accuracy": result["accuracy"]}
        try:
            save_model(model, save_path, metadata=meta)
        except OSError as exc:
            raise CLIError(f"cannot save the model to {save_path}: {one_line(exc)}") from None
        print(f"model saved to {save_path}")
    if args.plot:
        paths = plotting.save_all(args.plot, model, history, Xt[0])
        print(f"{len(paths)} figures written to {args.plot}")
    print(f"total time: {time.perf_counter() - t_start:.1f} s")
    return 0
