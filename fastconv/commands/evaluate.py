"""``fastconv evaluate``: accuracy and loss of a saved model on a dataset split."""

from __future__ import annotations

import time

import numpy as np

from .._version import __version__
from .._runtime import set_num_threads
from ..checkpoint import CheckpointError, load_model, read_metadata
from ..train import evaluate
from ._common import CLIError, one_line, positive_int
from ._data import DATASETS, load_split

__all__ = ["add_parser", "run"]


def add_parser(sub):
    p = sub.add_parser(
        "evaluate",
        help="accuracy and loss of a saved model on a dataset",
        description=(
            "Print the accuracy and the mean cross-entropy loss of a model saved by `fastconv train` "
            "(or of a checkpoint written by --checkpoint) on a dataset split. The network is "
            "rebuilt from what the file records. For the built-in shapes set the split is drawn "
            "as the training run drew it (its seed and sizes)."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="a .npz file saved by fastconv train (--save or --checkpoint)")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="dataset (default: the one the model was trained on)")
    p.add_argument("--split", choices=("test", "train"), default="test", help="split (default: test)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where the downloadable datasets live (default: $FASTCONV_DATA/<dataset> "
                        "or ~/.cache/fastconv/<dataset>)")
    p.add_argument("--no-download", action="store_true",
                   help="never download: fail if the dataset files are not in --data-dir")
    p.add_argument("--batch-size", type=positive_int, default=256, help="batch size (default: 256)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads for the native kernels (default: fastconv's default)")
    return p


def _load(path):
    """(model, the file's metadata dict)."""
    try:
        meta = read_metadata(path)
        model = load_model(path)
    except (OSError, CheckpointError) as exc:
        raise CLIError(f"cannot load the model {path}: {one_line(exc)}") from None
    except (TypeError, ValueError) as exc:
        raise CLIError(f"cannot rebuild the network of {path}: {one_line(exc)} (fastconv evaluate "
                       "needs a file written by fastconv train)") from None
    return model, meta


def run(args):
    if args.threads is not None:
        set_num_threads(args.threads)
    model, meta = _load(args.model)
    dataset = args.dataset or meta.get("dataset")
    if dataset not in DATASETS:
        raise CLIError(f"{args.model} does not record its dataset: say which with --dataset NAME")
    run_opts = meta.get("cli") if isinstance(meta.get("cli"), dict) else {}
    same_run = dataset == meta.get("dataset")
    sizes = {"train": run_opts.get("train_size"), "test": run_opts.get("test_size")} if same_run else None
    seed = run_opts.get("seed", 0) if same_run else 0
    t0 = time.perf_counter()
    X, y = load_split(dataset, args.split, data_dir=args.data_dir, download=not args.no_download,
                      seed=seed or 0, sizes=sizes)
    X = X.astype(model.dtype, copy=False)
    kw = meta.get("kwargs") or {}
    want = (kw.get("in_channels"), kw.get("input_size"))
    if (want[0] is not None and want[0] != X.shape[1]) or (want[1] is not None and (want[1], want[1]) != X.shape[2:]):
        size = f"{want[1]}x{want[1]}" if want[1] is not None else "any size"
        raise CLIError(f"{args.model} takes {want[0]}-channel images of {size}; {dataset} has "
                       f"{X.shape[1]}x{X.shape[2]}x{X.shape[3]}")
    print(f"fastconv {__version__}: evaluating {args.model} ({meta.get('builder', type(model).__name__)}, "
          f"{np.dtype(model.dtype).name}) on the {dataset} {args.split} split ({len(X):,} images)")
    try:
        result = evaluate(model, (X, y), batch_size=args.batch_size)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"cannot evaluate {args.model} on {dataset}: {one_line(exc)}") from None
    print(f"{args.split} accuracy: {100 * result['accuracy']:.2f}% ({result['n']:,} images, "
          f"loss {result['loss']:.4f})")
    print(f"total time: {time.perf_counter() - t0:.1f} s")
    return 0
