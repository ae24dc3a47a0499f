"""``fastconv tune``: time the convolution algorithms on given layers and store the winners."""

from __future__ import annotations

import time

import numpy as np

from .. import bench, models, tune
from .._runtime import set_num_threads
from ._common import CLIError, one_line, positive_int, shape3

__all__ = ["add_parser", "run"]

#: (C, H, W) of the input each model is tuned for unless --input says otherwise.
TUNE_INPUTS = {"lenet5": (1, 28, 28), "vgg_small": (3, 32, 32), "resnet_small": (3, 32, 32)}


def add_parser(sub):
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
                        "the benchmark layer set of BENCHMARKS.md (lenet_c1, resnet_3x3, ...)")
    p.add_argument("--model", choices=sorted(models.MODELS), default=None,
                   help="tune the convolutions of this model's forward and backward passes")
    p.add_argument("--batch", type=positive_int, default=64,
                   help="batch size for --model (default: 64, the trainer's default)")
    p.add_argument("--input", type=shape3, default=None,
                   help="C,H,W of the model's input (default: 1,28,28 for lenet5, else 3,32,32)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="thread count to tune for (default: fastconv's current count)")
    p.add_argument("--repeat", type=positive_int, default=3,
                   help="timing samples per algorithm and pass; the best is kept (default: 3)")
    p.add_argument("--show", action="store_true", help="list the tuned layers and exit")
    p.add_argument("--clear", action="store_true", help="delete the tuning file and exit")
    return p


def _show(path):
    table = tune.entries()
    print(f"tuning file: {path} ({len(table)} entries for this machine)")
    for key in sorted(table):
        ms = table[key].get("ms", {})
        times = ", ".join(f"{a} {v:.3f} ms" if v is not None else f"{a} -" for a, v in ms.items())
        print(f"  {key}: {table[key].get('algo')}  ({times})")


def _layers(args):
    """The convolution geometries (``ConvParams``) named by --cases and --model."""
    layers = []
    if args.cases is not None:
        try:
            names = [n for n in bench.select_cases(args.cases) if n in bench.CONV_CASES]
        except ValueError as exc:
            raise CLIError(one_line(exc)) from None
        if not names:
            raise CLIError(f"--cases {args.cases!r} names no convolution layer")
        layers += [bench.CONV_CASES[n] for n in names]
    if args.model is not None:
        model = models.get_model(args.model, dtype=np.dtype(args.dtype))
        shape = (args.batch,) + (args.input or TUNE_INPUTS[args.model])
        try:
            layers += tune.model_layers(model, shape)
        except ValueError as exc:
            raise CLIError(f"cannot run {args.model} on input {shape}: {one_line(exc)}") from None
    return layers


def run(args):
    path = tune.cache_path()
    if args.clear:
        had = tune.clear()
        print(f"{'deleted' if had else 'no tuning file at'} {path}")
        return 0
    if args.show:
        _show(path)
        return 0
    if path is None:
        raise CLIError("the tuning cache is turned off (FASTCONV_TUNE_FILE is set but empty)")
    if args.cases is None and args.model is None:
        raise CLIError("say what to tune: --cases all (the benchmark layers) and/or --model NAME")
    layers = _layers(args)
    prev = set_num_threads(args.threads) if args.threads else None
    try:
        t0 = time.perf_counter()
        results = tune.tune(layers, np.dtype(args.dtype), args.repeat, progress=print)
    finally:
        if prev is not None:
            set_num_threads(prev)
    for p, res in results:
        picks = ", ".join(f"{pass_} {r['algo']}" for pass_, r in res.items())
        print(f"  {p.x_shape} * {p.w_shape}: {picks}")
    print(f"{len(results)} layers tuned in {time.perf_counter() - t0:.1f} s; written to {path}")
    return 0
