"""``fastconv train``: train a CNN on a dataset, report test accuracy and throughput, save it.

Resuming (``--resume CKPT``): the checkpoint records the options of its run
(model, dataset, optimizer, lr, momentum, batch size, dtype, seed, training
set size). Options left out take the run's values; an option given with
another value is an error, listing each (never silently replaced by the
checkpoint's, nor silently ignored). ``--epochs`` is the run's new total
(default: the run's planned total): a larger one extends the run, and the
cosine schedule is then re-planned over the new total from the current
position (the remaining epochs get the learning rates that a run planned for
that many epochs has at those epochs); the command says so. See
:meth:`fastconv.train.Trainer.fit` for the same rule in the Python API.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

import numpy as np

from .. import _env, nn, optim, plotting
from .._args import output_dir, output_file
from .._version import __version__
from .._runtime import get_num_threads, set_num_threads
from ..checkpoint import CheckpointError, training_settings
from ..distributed import DataParallel, DistributedError, launched, local_size
from ..models import MODELS
from ..train import Trainer, save_model
from ._common import CLIError, nonneg_int, one_line, positive_float, positive_int
from ._data import DATASETS, SHAPES_SIZES, load_split, num_classes
from ._malloc import keep_freed_memory

__all__ = ["TRAIN_DEFAULTS", "DATASETS", "RUN_OPTIONS", "add_parser", "run", "load_data", "build_model"]

#: Defaults of ``fastconv train``: chosen so that LeNet-5 on the shapes set
#: passes 90% test accuracy with a wide margin in a short run on 2 cores.
TRAIN_DEFAULTS = {
    "epochs": 3,
    "batch_size": 64,
    "sgd_lr": 0.05,
    "adam_lr": 1e-3,
    "momentum": 0.9,
    "shapes_train": SHAPES_SIZES["train"],
    "shapes_test": SHAPES_SIZES["test"],
}

#: The options that define a run: a resumed run takes them from its checkpoint.
RUN_OPTIONS = ("model", "dataset", "optimizer", "lr", "momentum", "batch_size", "dtype", "seed",
               "train_size")


def add_parser(sub):
    d = TRAIN_DEFAULTS
    p = sub.add_parser(
        "train",
        help="train a CNN and save it (default: LeNet-5 on the built-in shapes set)",
        description=(
            "Train a CNN on a dataset, print per-epoch progress, the test accuracy and the "
            "training throughput, and save the model. With no options: LeNet-5 on the built-in "
            f"shapes set ({d['shapes_train']:,} training / {d['shapes_test']:,} test images drawn "
            "on the fly, no download). With --resume, the options that define the run (model, "
            "dataset, optimizer, lr, momentum, batch size, dtype, seed, training size) come "
            "from the checkpoint; giving one with another value is an error."
        ),
    )
    p.add_argument("--model", choices=sorted(MODELS), default=None,
                   help="network (default: lenet5; vgg_small for cifar10). Every model adapts to "
                        "the dataset's channels, image size and classes")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="dataset (default: shapes, built in; the others are downloaded into "
                        "--data-dir when missing)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help=f"number of epochs in all (default: {d['epochs']}; with --resume, the run's "
                        "planned total: a larger number extends the run, re-planning its schedule)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help=f"mini-batch size (default: {d['batch_size']})")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default=None,
                   help="sgd (with momentum) or adam (default: sgd)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help=f"learning rate (default: {d['sgd_lr']} for sgd, {d['adam_lr']} for adam), "
                        "annealed to zero over the run by a cosine schedule")
    p.add_argument("--momentum", type=float, default=None,
                   help=f"SGD momentum (default: {d['momentum']}; sgd only)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads for the native kernels (default: fastconv's default, see `fastconv info`)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where the downloadable datasets live (default: $FASTCONV_DATA/<dataset> "
                        "or ~/.cache/fastconv/<dataset>)")
    p.add_argument("--no-download", action="store_true",
                   help="never download: fail if the dataset files are not in --data-dir")
    p.add_argument("--save", default=None, metavar="PATH",
                   help="where to save the trained model: a file, or a folder to save "
                        "fastconv-<model>-<dataset>.npz in (default: that name in the current folder)")
    p.add_argument("--no-save", action="store_true", help="do not save the model")
    p.add_argument("--plot", default=None, metavar="DIR",
                   help='write PNG figures into the folder DIR: learning curves, first-layer filters and the '
                        'feature maps of one test image (needs pip install "fastconv[plot]")')
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="write a resumable checkpoint to PATH after every epoch")
    p.add_argument("--resume", default=None, metavar="PATH",
                   help="continue the run of a checkpoint written by --checkpoint, with its options")
    p.add_argument("--seed", type=nonneg_int, default=None, help="random seed (default: 0)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="parameter and data type (default: float32)")
    p.add_argument("--train-size", type=positive_int, default=None, metavar="N",
                   help=f"training images: for shapes, how many to draw (default: {d['shapes_train']:,}); "
                        "for the other datasets, use only the first N of the training split")
    p.add_argument("--test-size", type=positive_int, default=None, metavar="N",
                   help=f"test images, likewise (default for shapes: {d['shapes_test']:,})")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is only drawn when stderr is a terminal anyway)")
    p.add_argument("--quiet", action="store_true",
                   help="no header, progress bar or per-epoch lines: only the results and errors")
    p.add_argument("--distributed", action="store_true",
                   help="train data-parallel over the processes of an MPI job (on by itself under "
                        "`mpiexec -n N fastconv train ...` with N > 1; needs pip install "
                        '"fastconv[mpi]"): --batch-size is the global batch, split across the ranks')
    p.add_argument("--overlap-allreduce", action="store_true",
                   help="data-parallel: sum the gradients in 1 MB buckets, each started during the "
                        "backward pass as soon as its gradients are final")
    p.add_argument("--sync-batchnorm", action="store_true",
                   help="data-parallel: BatchNorm statistics over the whole global batch (default: "
                        "each rank's share)")
    return p


# ---------------------------------------------------------------- the run's settings


def _option(name):
    return "--" + name.replace("_", "-")


def _shown(key, value):
    if value is None:
        return "the whole training split" if key == "train_size" else "none"
    return value


def _resolve(args, stored):
    """The run's settings: each option given, else the checkpoint's (``stored``, or None),
    else its default. An option given with another value than ``stored`` is a CLIError."""
    given = {k: getattr(args, k) for k in RUN_OPTIONS}
    if stored:
        clash = [f"{_option(k)} {given[k]} (the run used {_shown(k, stored[k])})" for k in RUN_OPTIONS
                 if given[k] is not None and k in stored and given[k] != stored[k]
                 and not (k == "momentum" and stored[k] is None)]
        if clash:
            raise CLIError(
                f"cannot resume from {args.resume}: {', '.join(clash)}. Leave these options out to "
                "continue the run with its own settings, or start a new run without --resume"
            )
    s = {k: given[k] if given[k] is not None else (stored or {}).get(k) for k in RUN_OPTIONS}
    s["dataset"] = s["dataset"] or "shapes"
    s["model"] = s["model"] or ("vgg_small" if s["dataset"] == "cifar10" else "lenet5")
    s["optimizer"] = s["optimizer"] or "sgd"
    if s["optimizer"] != "sgd" and given["momentum"] is not None:
        raise CLIError(f"--momentum applies to --optimizer sgd only, not {s['optimizer']}")
    if s["lr"] is None:
        s["lr"] = TRAIN_DEFAULTS[f"{s['optimizer']}_lr"]
    if s["momentum"] is None and s["optimizer"] == "sgd":
        s["momentum"] = TRAIN_DEFAULTS["momentum"]
    s["batch_size"] = s["batch_size"] or TRAIN_DEFAULTS["batch_size"]
    s["dtype"] = s["dtype"] or "float32"
    s["seed"] = 0 if s["seed"] is None else s["seed"]
    if s["dataset"] == "shapes" and s["train_size"] is None:
        s["train_size"] = TRAIN_DEFAULTS["shapes_train"]
    return s


def _read_resume(args):
    """(completed epochs, planned epochs or None, the run's stored options or None) of
    --resume's checkpoint, read before anything else is done."""
    try:
        info = training_settings(args.resume)
    except (OSError, CheckpointError) as exc:
        raise CLIError(f"cannot resume from {args.resume}: {one_line(exc)}") from None
    stored = info["metadata"].get("cli") if isinstance(info["metadata"], dict) else None
    return info["epoch"], (info["plan"] or {}).get("epochs"), stored if isinstance(stored, dict) else None


def _output_paths(args, s):
    """(model file or None, plot folder or None, checkpoint file or None), checked before
    any work is done: a folder for --save means the default file name in it."""
    default_name = f"fastconv-{s['model']}-{s['dataset']}.npz"
    try:
        save = None if args.no_save else output_file(args.save or default_name, "--save", default_name)
        plot = output_dir(args.plot, "--plot") if args.plot else None
        ckpt = output_file(args.checkpoint, "--checkpoint") if args.checkpoint else None
    except (TypeError, ValueError) as exc:
        raise CLIError(one_line(exc)) from None
    named = [(n, p) for n, p in (("--save", save), ("--checkpoint", ckpt),
                                 ("--resume", Path(args.resume) if args.resume else None)) if p]
    for i, (a, pa) in enumerate(named):
        for b, pb in named[i + 1:]:
            if {a, b} != {"--checkpoint", "--resume"} and pa.resolve() == pb.resolve():
                raise CLIError(f"{a} and {b} name the same file {pa}: the model would replace the checkpoint")
    return save, plot, ckpt


# ---------------------------------------------------------------- data and model


def load_data(args):
    """((X_train, y_train), (X_test, y_test), number of classes) for the chosen dataset and
    sizes (``args``: dataset, seed, train_size, test_size, data_dir, no_download)."""
    sizes = {"train": args.train_size, "test": args.test_size}
    kw = dict(data_dir=args.data_dir, download=not args.no_download, seed=args.seed or 0, sizes=sizes)
    train = load_split(args.dataset, "train", **kw)
    test = load_split(args.dataset, "test", **kw)
    if args.dataset != "shapes":
        if args.train_size:
            train = (train[0][: args.train_size], train[1][: args.train_size])
        if args.test_size:
            test = (test[0][: args.test_size], test[1][: args.test_size])
    return train, test, num_classes(args.dataset, train[1], test[1])


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


def _optimizer(s, model):
    """(optimiser, its one-line description) for the run's settings."""
    if s["optimizer"] == "sgd":
        return (optim.SGD(model.parameters(), lr=s["lr"], momentum=s["momentum"]),
                f"SGD lr {s['lr']:g} momentum {s['momentum']:g}")
    return optim.Adam(model.parameters(), lr=s["lr"]), f"Adam lr {s['lr']:g}"


# ---------------------------------------------------------------- the command


def _data_parallel(args):
    """The run's :class:`DataParallel`, or None for one process (see --distributed)."""
    found = launched()
    if not args.distributed and (found is None or found[2] < 2):
        return None
    try:
        return DataParallel(sync_batchnorm=args.sync_batchnorm, required=True,
                            overlap=args.overlap_allreduce,
                            **({"bucket_mb": 1.0} if args.overlap_allreduce else {}))
    except DistributedError as exc:
        raise CLIError(f"--distributed: {one_line(exc)}" if args.distributed else one_line(exc)) from None


def run(args):
    dist = _data_parallel(args)
    if dist is None:
        return _run(args, None)
    if args.threads is None and _env.num_threads() is None:
        set_num_threads(max(1, get_num_threads() // local_size()))  # share the cores
    with dist.guard(user_errors=(CLIError,)):
        return _run(args, dist)


def _run(args, dist):
    keep_freed_memory()
    main = dist is None or dist.is_main
    done = planned = stored = None
    if args.resume:
        done, planned, stored = _read_resume(args)
    s = _resolve(args, stored)
    epochs = args.epochs or planned or max(TRAIN_DEFAULTS["epochs"], done or 0)
    if done is not None and epochs < done:
        raise CLIError(f"cannot resume from {args.resume}: its run has completed {done} epochs, "
                       f"--epochs {epochs} is fewer (--epochs is the total, counted from 1)")
    save_path, plot_dir, ckpt_path = _output_paths(args, s)
    if dist is not None and s["batch_size"] < dist.size:
        raise CLIError(f"--batch-size {s['batch_size']} is smaller than the number of ranks ({dist.size}): "
                       "the global batch is split across the ranks, each needs at least one image")
    if plot_dir is not None:
        try:
            plotting.require_matplotlib()  # fail before training, not after it
        except plotting.MissingMatplotlib as exc:
            raise CLIError(str(exc)) from None
    if args.threads is not None:
        set_num_threads(args.threads)
    quiet = args.quiet
    say = (lambda *a: None) if quiet or not main else print
    dtype = np.dtype(s["dtype"])

    t_start = time.perf_counter()
    data_args = argparse.Namespace(dataset=s["dataset"], seed=s["seed"], train_size=s["train_size"],
                                   test_size=args.test_size, data_dir=args.data_dir,
                                   no_download=args.no_download)
    (X, y), (Xt, yt), n_classes = load_data(data_args)
    if dtype != X.dtype:
        X, Xt = X.astype(dtype), Xt.astype(dtype)
    model, model_kwargs = build_model(s["model"], X, n_classes, dtype, s["seed"])

    opt, opt_text = _optimizer(s, model)
    sched = optim.CosineLR(opt, T_max=epochs)
    meta = {"builder": s["model"], "kwargs": dict(model_kwargs, dtype=dtype.name), "dataset": s["dataset"],
            "cli": dict(s, test_size=args.test_size)}
    trainer = Trainer(model, nn.SoftmaxCrossEntropy(), opt, scheduler=sched,
                      progress=False if (args.no_progress or quiet) else None, verbose=not quiet,
                      metadata=meta, distributed=dist if dist is not None else False)
    if args.resume:
        try:
            trainer.load_checkpoint(args.resume, epochs=epochs)
        except (OSError, ValueError) as exc:
            raise CLIError(f"cannot resume from {args.resume}: {one_line(exc)}") from None

    _, C, H, W = X.shape
    nt = get_num_threads()
    say(f"fastconv {__version__}: training {s['model']} on {s['dataset']} "
        f"({len(X):,} training / {len(Xt):,} test images of {C}x{H}x{W}, {n_classes} classes)")
    ranks = f"{dist.size} ranks x " if dist is not None else ""
    say(f"  {model.num_parameters():,} parameters, {epochs} epochs, batch {s['batch_size']}, "
        f"{opt_text} (cosine schedule), {ranks}{nt} thread{'s' if nt != 1 else ''}, {dtype.name}")
    if args.resume and main:
        _print_resume(args.resume, trainer, done, planned, epochs, stored)
    sys.stdout.flush()

    try:
        history = trainer.fit((X, y), epochs=epochs, batch_size=s["batch_size"], val=(Xt, yt),
                              seed=s["seed"], checkpoint=ckpt_path, resume=bool(args.resume))
    except FloatingPointError as exc:
        raise CLIError(one_line(exc)) from None
    result = trainer.evaluate((Xt, yt))
    if not main:
        return 0
    print(f"test accuracy: {100 * result['accuracy']:.2f}% ({result['n']:,} images, loss {result['loss']:.4f})")
    if history.train_seconds > 0:
        print(f"training throughput: {history.images_per_second:,.0f} images/second")
    if save_path is not None:
        try:
            save_model(model, save_path, metadata=dict(meta, test_accuracy=result["accuracy"]))
        except OSError as exc:
            raise CLIError(f"cannot save the model to {save_path}: {one_line(exc)}") from None
        print(f"model saved to {save_path}")
    if plot_dir is not None:
        try:
            paths = plotting.save_all(plot_dir, model, history, Xt[0])
        except OSError as exc:
            raise CLIError(f"cannot write the figures into {plot_dir}: {one_line(exc)}") from None
        print(f"{len(paths)} figures written to {plot_dir}")
    print(f"total time: {time.perf_counter() - t_start:.1f} s")
    return 0


def _print_resume(path, trainer, done, planned, epochs, stored):
    """What resuming does, said before training: always printed (also with --quiet)."""
    if stored is None:
        print(f"note: {path} does not record the options of its run (written by the Python API or an "
              "older fastconv): the options given here are used")
    if epochs == done:
        print(f"resuming from {path}: its run has completed all {done} epochs, nothing left to train")
        return
    print(f"resuming from {path} after epoch {done}: training epochs {done + 1}-{epochs}")
    if trainer.replanned is not None:
        old, new = trainer.replanned
        how = "extended" if new > old else "shortened"
        print(f"the run is {how} from {planned or old} to {epochs} epochs: the cosine schedule is "
              f"re-planned over {new} epochs from epoch {done + 1} (learning rate now "
              f"{trainer.optimizer.lr:.3g})")

