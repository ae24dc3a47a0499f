"""The ``fastconv`` command (also ``python -m fastconv``): argument parsing and dispatch.

Subcommands (one module each in :mod:`fastconv.commands`)::

    fastconv train   train a CNN (default: LeNet-5 on the built-in shapes set) and save it
    fastconv info    version, build, OpenMP, threads and CPU features
    fastconv evaluate  accuracy and loss of a saved model on a dataset
    fastconv predict   run a saved model (.npz or .onnx) on the inputs in a .npy file
    fastconv check   self-test: native kernels against the NumPy reference
    fastconv tune    time the convolution algorithms on your layers for algo="auto"
    fastconv bench   benchmarks (fastconv.bench.main, which parses its own options); with
                     --onnx FILE: one ONNX model in fastconv, onnxruntime and OpenVINO
    fastconv compress  prune and/or quantize a saved model to int8, report and save it

Each module has ``add_parser(subparsers)`` and ``run(args) -> exit code``; add
a subcommand by writing one and listing it in :data:`COMMANDS`. Exit codes: 0
success, 1 a failed check, 2 a usage, data or dependency error (reported as
one line on stderr, never a traceback), 130 interrupted. Every command first
checks fastconv's environment variables (:func:`fastconv._env.check`): a bad
one is such a one-line error too.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import _env
from ._version import __version__
from .commands import bench as bench_cmd
from .commands import compress as compress_cmd
from .commands import check as check_cmd
from .commands import evaluate as evaluate_cmd
from .commands import info as info_cmd
from .commands import predict as predict_cmd
from .commands import train as train_cmd
from .commands import tune as tune_cmd
from .commands._common import CLIError

__all__ = ["main", "build_parser", "COMMANDS", "CLIError"]

#: name -> subcommand module (``add_parser``, ``run``), in the order ``fastconv --help`` lists them.
COMMANDS = {
    "train": train_cmd,
    "evaluate": evaluate_cmd,
    "predict": predict_cmd,
    "info": info_cmd,
    "check": check_cmd,
    "tune": tune_cmd,
    "bench": bench_cmd,
    "compress": compress_cmd,
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastconv",
        description="fastconv: fast CPU convolutional networks. Run `fastconv train` to train "
                    "LeNet-5 on the built-in shapes set.",
    )
    parser.add_argument("--version", action="version", version=f"fastconv {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(sub).set_defaults(_run=command.run)
    return parser


def _run(fn, arg):
    """``fn(arg)``'s exit code, with the errors meant for the user turned into exit codes;
    the environment variables are checked first."""
    try:
        _env.check(paths=True)
        return int(fn(arg) or 0)
    except (CLIError, _env.EnvironmentVariableError) as exc:
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


def main(argv=None):
    """Run the ``fastconv`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        # fastconv.bench.main parses its own arguments, untouched (argparse's REMAINDER
        # would not capture a leading option such as `--help`).
        return _run(bench_cmd.main, argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error (argparse printed it)
        return exc.code if isinstance(exc.code, int) else 2
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    return _run(run, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
