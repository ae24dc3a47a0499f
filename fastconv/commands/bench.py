"""``fastconv bench``: hands its arguments to :func:`fastconv.bench.main`, which parses them."""

from __future__ import annotations

import argparse

from .. import bench

__all__ = ["add_parser", "run", "main"]

HELP = ("time fastconv against NumPy and PyTorch on the benchmark layer set; with --onnx FILE, "
        "an ONNX model in fastconv against onnxruntime and OpenVINO")


def add_parser(sub):
    """The ``bench`` entry of ``fastconv --help``; its options belong to fastconv.bench.main
    (:func:`fastconv.cli.main` passes ``fastconv bench ...`` to :func:`main` untouched)."""
    p = sub.add_parser("bench", help=HELP, add_help=False,
                       description="Benchmarks; every option is passed to fastconv.bench.main.")
    p.add_argument("bench_argv", nargs=argparse.REMAINDER)
    return p


def main(argv):
    """``fastconv.bench.main(argv)``'s exit code; its argparse exits (``--help``, a usage
    error) become exit codes too."""
    try:
        return int(bench.main(list(argv)) or 0)
    except SystemExit as exc:
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 2


def run(args):
    return main(args.bench_argv)
