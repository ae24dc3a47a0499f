"""The ``fastconv`` command (also ``python -m fastconv``).

Subcommands::

    fastconv train   train a CNN (default: LeNet-5 on the built-in shapes set) and save it
    fastconv info    version, build, OpenMP, threads and CPU features
    fastconv check   self-test: native kernels against the NumPy reference
    fastconv bench   benchmarks (when fastconv.bench is present)

Each subcommand is a pair of functions, ``_add_<name>(subparsers)`` that
declares its options and ``_run_<name>(args) -> exit code``, listed in
``_COMMANDS``. Exit codes: 0 success, 1 a failed check, 2 a usage, data or
dependency error (reported as one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]


class CLIError(Exception):
    """An error reported to the user as one line on stderr, with exit code 2."""


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _nonneg_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and np.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


# ---------------------------------------------------------------------------
# fastconv train
# ---------------------------------------------------------------------------

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

_DATASETS = ("shapes", "mnist", "fashion_mnist", "cifar10")


def _add_train(sub):
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
    from .models import MODELS

    p.add_argument("--model", choices=sorted(MODELS), default=None,
                   help="network (default: lenet5; vgg_small for cifar10). Every model adapts to "
                        "the dataset's channels, image size and classes")
    p.add_argument("--dataset", choices=_DATASETS, default="shapes",
                   help="dataset (default: shapes, built in; the others are downloaded into "
                        "--data-dir when missing)")
    p.add_argument("--epochs", type=_positive_int, default=d["epochs"],
                   help=f"number of epochs (default: {d['epochs']})")
    p.add_argument("--batch-size", type=_positive_int, default=d["batch_size"],
                   help=f"mini-batch size (default: {d['batch_size']})")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="sgd (with momentum) or adam (default: sgd)")
    p.add_argument("--lr", type=_positive_float, default=None,
                   help=f"learning rate (default: {d['sgd_lr']} for sgd, {d['adam_lr']} for adam), "
                        "annealed to zero over the run by a cosine schedule")
    p.add_argument("--momentum", type=float, default=d["momentum"],
                   help=f"SGD momentum (default: {d['momentum']})")
    p.add_argument("--threads", type=_positive_int, default=None,
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
    p.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default: 0)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="parameter and data type (default: float32)")
    p.add_argument("--train-size", type=_positive_int, default=None, metavar="N",
                   help=f"training images: for shapes, how many to draw (default: {d['shapes_train']:,}); "
                        "for the other datasets, use only the first N of the training split")
    p.add_argument("--test-size", type=_positive_int, default=None, metavar="N",
                   help=f"test images, likewise (default for shapes: {d['shapes_test']:,})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    return p


def _load_data(args):
    """((X_train, y_train), (X_test, y_test), classes) for the chosen dataset and sizes."""
    from . import data

    if args.dataset == "shapes":
        n_train = args.train_size or TRAIN_DEFAULTS["shapes_train"]
        n_test = args.test_size or TRAIN_DEFAULTS["shapes_test"]
        train, test = data.shapes_split(n_train, n_test, seed=args.seed)
        classes = getattr(data, "SHAPES_CLASSES", None)
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
        classes = getattr(data, {"mnist": "MNIST_CLASSES", "fashion_mnist": "FASHION_MNIST_CLASSES",
                                 "cifar10": "CIFAR10_CLASSES"}[args.dataset], None)
    num_classes = len(classes) if classes else int(max(train[1].max(), test[1].max())) + 1
    return train, test, num_classes


def _build_model(name, X, num_classes, dtype, seed):
    import inspect

    from . import models

    _, C, H, W = X.shape
    builder = models.MODELS[name]
    kwargs = {"in_channels": int(C), "num_classes": int(num_classes)}
    if "input_size" in inspect.signature(builder).parameters:
        if H != W:
            raise CLIError(f"{name} needs square images, the dataset has {H}x{W}")
        kwargs["input_size"] = int(H)
    try:
        model = builder(**kwargs, dtype=dtype, seed=seed)
    except ValueError as exc:
        raise CLIError(f"cannot build {name} for {C}x{H}x{W} images: {_one_line(exc)}") from None
    return model, kwargs


#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _keep_freed_memory(limit=32 << 20):
    """For the training process only: ask glibc to keep freed blocks up to ``limit``
    bytes (32 MiB, the largest threshold every glibc accepts) in the heap instead of
    returning them to the system. A training step
    allocates and frees the same few-MiB activations every step; returned to the
    system, each comes back as fresh pages, one page fault per 4 KiB, every step
    (6% of ``fastconv train``'s time on the development machine). A no-op off glibc
    or when the user set MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ (theirs wins).
    Returns True when the setting was made."""
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # trim threshold first: setting either fixes both (no more dynamic thresholds)
    return bool(mallopt(_M_TRIM_THRESHOLD, 4 * limit)) and bool(mallopt(_M_MMAP_THRESHOLD, limit))


def _run_train(args):
    import fastconv

    _keep_freed_memory()

    from . import nn, optim
    from .train import Trainer, save_model

    model_name = args.model or ("vgg_small" if args.dataset == "cifar10" else "lenet5")
    if args.plot:
        from .plotting import MissingMatplotlib, require_matplotlib

        try:
            require_matplotlib()  # fail before training, not after it
        except MissingMatplotlib as exc:
            raise CLIError(str(exc)) from None
    if args.threads is not None:
        fastconv.set_num_threads(args.threads)
    dtype = np.dtype(args.dtype)
    save_path = None
    if not args.no_save:
        save_path = Path(args.save) if args.save else Path(f"fastconv-{model_name}-{args.dataset}.npz")

    t_start = time.perf_counter()
    try:
        (X, y), (Xt, yt), num_classes = _load_data(args)
    except (ConnectionError, FileNotFoundError, ValueError, OSError) as exc:
        raise CLIError(f"cannot load the {args.dataset} dataset: {_one_line(exc)}") from None
    if dtype != X.dtype:
        X, Xt = X.astype(dtype), Xt.astype(dtype)
    model, model_kwargs = _build_model(model_name, X, num_classes, dtype, args.seed)

    lr = args.lr if args.lr is not None else TRAIN_DEFAULTS[f"{args.optimizer}_lr"]
    if args.optimizer == "sgd":
        opt = optim.SGD(model.parameters(), lr=lr, momentum=args.momentum)
        opt_text = f"SGD lr {lr:g} momentum {args.momentum:g}"
    else:
        opt = optim.Adam(model.parameters(), lr=lr)
        opt_text = f"Adam lr {lr:g}"
    sched = optim.CosineLR(opt, T_max=args.epochs)
    trainer = Trainer(model, nn.SoftmaxCrossEntropy(), opt, scheduler=sched, progress=not args.no_progress)

    _, C, H, W = X.shape
    nt = fastconv.get_num_threads()
    print(f"fastconv {fastconv.__version__}: training {model_name} on {args.dataset} "
          f"({len(X):,} training / {len(Xt):,} test images of {C}x{H}x{W}, {num_classes} classes)")
    print(f"  {model.num_parameters():,} parameters, {args.epochs} epochs, batch {args.batch_size}, "
          f"{opt_text} (cosine schedule), {nt} thread{'s' if nt != 1 else ''}, {dtype.name}")
    sys.stdout.flush()

    try:
        history = trainer.fit((X, y), epochs=args.epochs, batch_size=args.batch_size, val=(Xt, yt),
                              seed=args.seed, checkpoint=args.checkpoint, resume=args.resume)
    except FloatingPointError as exc:
        raise CLIError(_one_line(exc)) from None
    except (FileNotFoundError, ValueError) as exc:
        if args.resume:
            raise CLIError(f"cannot resume from {args.resume}: {_one_line(exc)}") from None
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
            raise CLIError(f"cannot save the model to {save_path}: {_one_line(exc)}") from None
        print(f"model saved to {save_path}")
    if args.plot:
        from . import plotting

        paths = plotting.save_all(args.plot, model, history, Xt[0])
        print(f"{len(paths)} figures written to {args.plot}")
    print(f"total time: {time.perf_counter() - t_start:.1f} s")
    return 0


# ---------------------------------------------------------------------------
# fastconv tune
# ---------------------------------------------------------------------------

#: (C, H, W) of the input each model is tuned for unless --input says otherwise.
_TUNE_INPUTS = {"lenet5": (1, 28, 28), "vgg_small": (3, 32, 32), "resnet_small": (3, 32, 32)}


def _shape3(text):
    try:
        parts = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W (three positive ints), got {text!r}")
    return parts


def _add_tune(sub):
    from .models import MODELS

    p = sub.add_parser(
        "tune",
        help="time the convolution algorithms on your layers; algo='auto' then uses the winners",
        description=(
            "Time every convolution algorithm (direct, gemm, winograd) on each pass of the given "
            "layers at the current thread count and write the fastest to the tuning file, which "
            "algo='auto' reads (for exactly those geometries and dtype, at every thread count; the "
            "built-in rule covers everything else). The file is $FASTCONV_TUNE_FILE, else "
            "$XDG_CACHE_HOME/fastconv/tune.json (~/.cache/fastconv/tune.json)."
        ),
    )
    p.add_argument("--cases", default=None,
                   help="benchmark layers to tune: 'all' or comma-separated names of "
                        "benchmark_layers.md (lenet_c1, resnet_3x3, ...)")
    p.add_argument("--model", choices=sorted(MODELS), default=None,
                   help="tune the convolutions of this model's forward and backward passes")
    p.add_argument("--batch", type=_positive_int, default=64,
                   help="batch size for --model (default: 64, the trainer's default)")
    p.add_argument("--input", type=_shape3, default=None,
                   help="C,H,W of the model's input (default: 1,28,28 for lenet5, else 3,32,32)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="thread count to tune for (default: fastconv's current count)")
    p.add_argument("--repeat", type=_positive_int, default=3,
                   help="timing samples per algorithm and pass; the best is kept (default: 3)")
    p.add_argument("--show", action="store_true", help="list the tuned layers and exit")
    p.add_argument("--clear", action="store_true", help="delete the tuning file and exit")
    return p


def _run_tune(args):
    import fastconv

    from . import tune

    path = tune.cache_path()
    if args.clear:
        had = tune.clear()
        print(f"{'deleted' if had else 'no tuning file at'} {path}")
        return 0
    if args.show:
        table = tune.entries()
        print(f"tuning file: {path} ({len(table)} entries for this machine)")
        for key in sorted(table):
            ms = table[key].get("ms", {})
            times = ", ".join(f"{a} {v:.3f} ms" if v is not None else f"{a} -" for a, v in ms.items())
            print(f"  {key}: {table[key].get('algo')}  ({times})")
        return 0
    if path is None:
        raise CLIError("the tuning cache is turned off (FASTCONV_TUNE_FILE is set but empty)")
    if args.cases is None and args.model is None:
        raise CLIError("say what to tune: --cases all (the benchmark layers) and/or --model NAME")
    layers = []
    if args.cases is not None:
        from . import bench

        try:
            names = [n for n in bench.select_cases(args.cases) if n in bench.CONV_CASES]
        except ValueError as exc:
            raise CLIError(_one_line(exc)) from None
        if not names:
            raise CLIError(f"--cases {args.cases!r} names no convolution layer")
        layers += [bench.CONV_CASES[n] for n in names]
    if args.model is not None:
        from . import models

        model = models.get_model(args.model, dtype=np.dtype(args.dtype))
        shape = (args.batch,) + (args.input or _TUNE_INPUTS[args.model])
        try:
            layers += tune.model_layers(model, shape)
        except ValueError as exc:
            raise CLIError(f"cannot run {args.model} on input {shape}: {_one_line(exc)}") from None
    prev = fastconv.set_num_threads(args.threads) if args.threads else None
    try:
        t0 = time.perf_counter()
        results = tune.tune(layers, np.dtype(args.dtype), args.repeat, progress=print)
    finally:
        if prev is not None:
            fastconv.set_num_threads(prev)
    for p, res in results:
        picks = ", ".join(f"{pass_} {r['algo']}" for pass_, r in res.items())
        print(f"  {p.x_shape} * {p.w_shape}: {picks}")
    print(f"{len(results)} layers tuned in {time.perf_counter() - t0:.1f} s; written to {path}")
    return 0


# ---------------------------------------------------------------------------
# fastconv info
# ---------------------------------------------------------------------------


def _add_info(sub):
    return sub.add_parser("info", help="version, build, OpenMP, threads and CPU features",
                          description="Show fastconv's version, build and runtime configuration.")


def _run_info(args):
    import fastconv

    fastconv.show_config()
    try:
        backend = fastconv.get_backend()
    except Exception:  # pragma: no cover - the layer backend module is optional here
        backend = "native"
    print(f"  layer backend {backend}")
    extras = []
    for mod in ("tqdm", "matplotlib"):
        try:
            m = importlib.import_module(mod)
            extras.append(f"{mod} {getattr(m, '__version__', '?')}")
        except ImportError:
            extras.append(f"{mod} not installed")
    print(f"  optional      {', '.join(extras)}")
    return 0


# ---------------------------------------------------------------------------
# fastconv check
# ---------------------------------------------------------------------------

#: Largest allowed worst-case error, per dtype (relative to the reference's magnitude).
CHECK_TOL = {"float32": 1e-4, "float64": 1e-10}


def _rel_err(got, want):
    """max |got - want| / max(1, max |want|); inf when the shapes differ or got is missing."""
    if got is None or want is None:
        return 0.0 if got is None and want is None else float("inf")
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return float("inf")
    if want.size == 0:
        return 0.0
    if want.dtype.kind in "iu":
        return 0.0 if np.array_equal(got, want) else float("inf")
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    both_nan = np.isnan(got) & np.isnan(want)
    diff[both_nan] = 0.0
    if np.isnan(diff).any():
        return float("inf")
    scale = max(1.0, float(np.max(np.abs(np.nan_to_num(want.astype(np.float64))))))
    return float(diff.max()) / scale


def _conv_case(rng, common=False):
    """Random valid convolution arguments (shapes, stride, padding, dilation, groups).

    ``common``: a 3x3 kernel with stride 1 and dilation 1, the shape that
    specialised algorithms (Winograd) are restricted to.
    """
    from ._args import conv_params

    while True:
        groups = int(rng.choice([1, 1, 1, 2, 3]))
        C = groups * int(rng.integers(1, 4))
        K = groups * int(rng.integers(1, 4))
        N = int(rng.integers(1, 4))
        H, W = (int(v) for v in rng.integers(3, 13, 2))
        R, S = (int(v) for v in rng.integers(1, 5, 2))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 3)))
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        if common:
            R = S = 3
            stride = dilation = (1, 1)
            padding = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
        try:
            p = conv_params((N, C, H, W), (K, C // groups, R, S), stride, padding, dilation, groups)
        except ValueError:
            continue
        return dict(x_shape=(N, C, H, W), w_shape=(K, C // groups, R, S), y_shape=(N, K, p.P, p.Q),
                    kw=dict(stride=stride, padding=padding, dilation=dilation, groups=groups))


def _pool_case(rng, max_pool):
    from ._args import pool_params

    while True:
        N, C = int(rng.integers(1, 3)), int(rng.integers(1, 4))
        H, W = (int(v) for v in rng.integers(2, 12, 2))
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        pad = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        ceil_mode = bool(rng.integers(0, 2))
        kw = dict(kernel_size=k, stride=s, padding=pad, ceil_mode=ceil_mode)
        if max_pool:
            kw["dilation"] = (int(rng.integers(1, 3)), 1)
        else:
            kw["count_include_pad"] = bool(rng.integers(0, 2))
        try:
            pool_params((N, C, H, W), k, s, pad, kw.get("dilation", 1), ceil_mode)
        except ValueError:
            continue
        return (N, C, H, W), kw


def _check_ops(seed, cases):
    """{op name: {dtype name: worst error}}, plus {op: first exception text} for crashes."""
    from fastconv import functional as F
    from fastconv import reference as R

    algos = [a for a in getattr(F, "ALGOS", ("im2col", "direct")) if a != "auto"]
    worst = {}
    crashed = {}

    def record(op, dt, err):
        slot = worst.setdefault(op, {})
        slot[dt] = max(slot.get(dt, 0.0), err)

    def run(op, dt, fn, algo=None):
        slot = worst.setdefault(op, {})
        try:
            err = fn()
        except ValueError as exc:
            if algo is not None and f"algo={algo!r}" in str(exc):
                return  # this algorithm does not handle this geometry (and says so): not a failure
            crashed.setdefault(op, f"ValueError: {_one_line(exc)}")
            err = float("inf")
        except Exception as exc:  # a native kernel that raises is a failure, not a crash of check
            crashed.setdefault(op, f"{type(exc).__name__}: {_one_line(exc)}")
            err = float("inf")
        slot[dt] = max(slot.get(dt, 0.0), err)

    for dtype in (np.float32, np.float64):
        dt = np.dtype(dtype).name
        rng = np.random.default_rng([seed, 32 if dtype is np.float32 else 64])

        def rand(shape):
            return rng.standard_normal(shape).astype(dtype)

        for case in range(cases):
            c = _conv_case(rng, common=case % 2 == 1)
            x, w, b, dy = rand(c["x_shape"]), rand(c["w_shape"]), rand(c["w_shape"][0]), rand(c["y_shape"])
            kw = c["kw"]
            want_y = R.conv2d(x, w, b, **kw)
            want_g = R.conv2d_backward(dy, x, w, **kw)
            for algo in algos:
                run(f"conv2d [{algo}]", dt,
                    lambda: _rel_err(F.conv2d(x, w, b, algo=algo, **kw), want_y), algo)
                run(f"conv2d_backward [{algo}]", dt,
                    lambda: max(_rel_err(g, r) for g, r in
                                zip(F.conv2d_backward(dy, x, w, algo=algo, **kw), want_g)), algo)

            R_, S_ = c["w_shape"][2:]
            ukw = dict(stride=kw["stride"], padding=kw["padding"], dilation=kw["dilation"])
            xs = (c["x_shape"][0], c["x_shape"][1], c["x_shape"][2], c["x_shape"][3])
            want_cols = R.im2col(x, (R_, S_), **ukw)
            run("im2col", dt, lambda: _rel_err(F.im2col(x, (R_, S_), **ukw), want_cols))
            cols = rand(want_cols.shape)
            run("col2im", dt, lambda: _rel_err(F.col2im(cols, xs[2:], (R_, S_), **ukw),
                                                R.col2im(cols, xs[2:], (R_, S_), **ukw)))

            shape, pkw = _pool_case(rng, max_pool=True)
            xp = rand(shape)
            want, want_idx = R.max_pool2d(xp, return_indices=True, **pkw)

            def max_fwd():
                got, idx = F.max_pool2d(xp, return_indices=True, **pkw)
                return max(_rel_err(got, want), _rel_err(idx, want_idx))

            run("max_pool2d", dt, max_fwd)
            dyp = rand(want.shape)
            run("max_pool2d_backward", dt,
                lambda: _rel_err(F.max_pool2d_backward(dyp, want_idx, shape),
                                 R.max_pool2d_backward(dyp, want_idx, shape)))

            shape, akw = _pool_case(rng, max_pool=False)
            xa = rand(shape)
            want = R.avg_pool2d(xa, **akw)
            run("avg_pool2d", dt, lambda: _rel_err(F.avg_pool2d(xa, **akw), want))
            dya = rand(want.shape)
            run("avg_pool2d_backward", dt,
                lambda: _rel_err(F.avg_pool2d_backward(dya, shape, **akw),
                                 R.avg_pool2d_backward(dya, shape, **akw)))

            xr = rand((int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 9)),
                       int(rng.integers(1, 9))))
            xr[rng.random(xr.shape) < 0.1] = 0
            dyr = rand(xr.shape)
            run("relu", dt, lambda: _rel_err(F.relu(xr), R.relu(xr)))
            run("relu_backward", dt, lambda: _rel_err(F.relu_backward(dyr, xr), R.relu_backward(dyr, xr)))
    return worst, crashed


def _add_check(sub):
    p = sub.add_parser(
        "check", help="self-test: native kernels against the NumPy reference",
        description=("Run every native kernel (convolution forward and backward for each algorithm, "
                     "max and average pooling forward and backward, im2col, col2im, ReLU) on random "
                     "shapes in float32 and float64, compare with fastconv.reference and print the "
                     "worst error per op. Exits 1 on a mismatch (tolerance: "
                     f"{CHECK_TOL['float32']:g} float32, {CHECK_TOL['float64']:g} float64, relative "
                     "to the reference's largest magnitude)."))
    p.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default: 0)")
    p.add_argument("--cases", type=_positive_int, default=50,
                   help="random shapes per op and dtype (default: 50)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="threads for the native kernels (default: fastconv's default)")
    return p


def _run_check(args):
    import fastconv

    if args.threads is not None:
        fastconv.set_num_threads(args.threads)
    print(f"fastconv {fastconv.__version__} check: {args.cases} random cases per op and dtype, "
          f"seed {args.seed}, {fastconv.get_num_threads()} threads")
    t0 = time.perf_counter()
    worst, crashed = _check_ops(args.seed, args.cases)
    name_w = max(len(op) for op in worst) + 2
    print(f"{'op':<{name_w}}{'float32':>11}{'float64':>11}  result")
    failed = []
    for op, errs in worst.items():
        ok = all(errs.get(dt, 0.0) <= tol for dt, tol in CHECK_TOL.items())
        cells = "".join(f"{errs[dt]:>11.2e}" if dt in errs else f"{'n/a':>11}" for dt in CHECK_TOL)
        line = f"{op:<{name_w}}{cells}  {'OK' if ok else 'FAIL'}"
        if op in crashed:
            line += f"  ({crashed[op]})"
        print(line)
        if not ok:
            failed.append(op)
    dt = time.perf_counter() - t0
    if failed:
        print(f"FAILED: {len(failed)} of {len(worst)} ops differ from the reference: {', '.join(failed)} "
              f"({dt:.1f} s)")
        return 1
    print(f"all {len(worst)} ops match the reference ({dt:.1f} s)")
    return 0


# ---------------------------------------------------------------------------
# fastconv bench (provided by fastconv.bench, when present)
# ---------------------------------------------------------------------------


def _bench_module():
    """(fastconv.bench module or None, import error text or None)."""
    mod = sys.modules.get("fastconv.bench")
    if mod is not None:
        return mod, None
    try:
        if importlib.util.find_spec("fastconv.bench") is None:
            return None, None
        return importlib.import_module("fastconv.bench"), None
    except ImportError as exc:
        return None, _one_line(exc)


def _add_bench(sub):
    """Wire in fastconv.bench: its ``add_parser(subparsers)`` (whose parser sets ``func``, a
    function of the parsed args returning the exit code), or else a pass-through to ``main(argv)``."""
    bench, error = _bench_module()
    if error is not None:
        p = sub.add_parser("bench", help="benchmarks (unavailable here: run it to see why)")
        p.set_defaults(_run=lambda args: _raise(CLIError(f"fastconv bench is unavailable: {error}")))
        return p
    if bench is None:
        return None
    if hasattr(bench, "add_parser"):
        p = bench.add_parser(sub)
        if p is not None and p.get_default("_run") is None:
            run = p.get_default("func") or getattr(bench, "run_from_args", None)
            if run is not None:
                p.set_defaults(_run=run)
        return p
    if hasattr(bench, "main"):
        p = sub.add_parser("bench", help="benchmarks (options: fastconv bench --help)", add_help=False,
                           description="Benchmarks; every option is passed to fastconv.bench.main.")
        p.add_argument("bench_argv", nargs=argparse.REMAINDER)
        p.set_defaults(_run=lambda args: bench.main(args.bench_argv) or 0)
        return p
    return None


def _bench_main():
    """fastconv.bench.main when the module exists and has main() but no add_parser(); else None."""
    bench, _ = _bench_module()
    if bench is None or hasattr(bench, "add_parser") or not hasattr(bench, "main"):
        return None
    return bench.main


def _raise(exc):
    raise exc


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

#: name -> (add parser, run). Add a subcommand by writing the two functions and listing them.
_COMMANDS = {
    "train": (_add_train, _run_train),
    "info": (_add_info, _run_info),
    "check": (_add_check, _run_check),
    "tune": (_add_tune, _run_tune),
}


def build_parser():
    import fastconv

    parser = argparse.ArgumentParser(
        prog="fastconv",
        description="fastconv: fast CPU convolutional networks. Run `fastconv train` to train "
                    "LeNet-5 on the built-in shapes set.",
    )
    parser.add_argument("--version", action="version", version=f"fastconv {fastconv.__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add, run in _COMMANDS.values():
        p = add(sub)
        p.set_defaults(_run=run)
    _add_bench(sub)
    return parser


def main(argv=None):
    """Run the ``fastconv`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        # A bench module with only main(argv) gets its arguments untouched (argparse's
        # REMAINDER would not capture a leading option such as `--help`).
        bench = _bench_main()
        if bench is not None:
            return int(bench(argv[1:]) or 0)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error (argparse printed it)
        return exc.code if isinstance(exc.code, int) else 2
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(run(args) or 0)
    except CLIError as exc:
        print(f"fastconv: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fastconv: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
