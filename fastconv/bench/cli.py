"""The command line of the benchmark: ``fastconv bench`` and ``python -m fastconv.bench``."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .._args.paths import output_file
from .cases import GROUPS, select_cases, thread_list
from .env import environment
from .onnxbench import format_onnx_table, parse_batches, run_onnx
from .report import format_environment, format_table
from .runner import DEFAULT_REPEAT, MIN_TIME_QUICK, run

__all__ = ["add_parser", "run_from_args", "main"]


def _add_arguments(p):
    p.add_argument("--threads", default=None,
                   help="comma-separated thread counts, e.g. 1,2 (default: 1 and fastconv's current count; "
                        "with --quick or --onnx only the current count)")
    p.add_argument("--cases", default=None,
                   help="comma-separated case names or groups: all, conv, pool, train "
                        f"(cases: {', '.join(GROUPS['all'])}); default all")
    p.add_argument("--onnx", metavar="FILE", default=None,
                   help="instead of the layer set, time this ONNX model: fastconv's compiled plan and "
                        "model.forward, onnxruntime and OpenVINO (when installed), on the same input; "
                        "prints latencies, ratios and how far the outputs differ")
    p.add_argument("--batch", default=None, metavar="N[,N...]",
                   help="with --onnx: comma-separated batch sizes (default 1)")
    p.add_argument("--input-shape", dest="input_shape", default=None, metavar="C,H,W",
                   help="with --onnx: the input sizes after the batch axis, for a file that leaves "
                        "them free")
    p.add_argument("--repeat", type=int, default=None,
                   help=f"timing rounds; the median is reported (default {DEFAULT_REPEAT}, 1 with --quick)")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write the environment and all results as JSON to PATH")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: tiny timing samples, 1 round, no per-algorithm timing "
                        "(figures are rough)")
    p.add_argument("--per-algo", dest="per_algo", action="store_true", default=None,
                   help="also time each of fastconv's algorithms (im2col, direct, gemm, ...) forced, when one call "
                        "is cheap (the default, except with --quick)")
    p.add_argument("--no-per-algo", dest="per_algo", action="store_false",
                   help="do not time fastconv's algorithms separately")
    p.add_argument("--interleave", action="store_true",
                   help="sample the implementations round-robin instead of each one's samples in a "
                        "row (spreads load drifts evenly, but every sample starts cold)")
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    return p


def add_parser(subparsers):
    """Register the ``bench`` subcommand on an argparse ``subparsers`` object.

    The subcommand's handler is stored as ``func`` (``args.func(args)`` returns the exit code).
    """
    p = subparsers.add_parser(
        "bench",
        help="time fastconv against NumPy and PyTorch on the benchmark layer set",
        description="Time fastconv against a plain-NumPy baseline and PyTorch (when installed) "
                    "on the benchmark layer set; print markdown tables.",
    )
    _add_arguments(p)
    p.set_defaults(func=run_from_args)
    return p


def _input_shape(text):
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
        if not shape or min(shape) < 1:
            raise ValueError
    except ValueError:
        raise ValueError(f"--input-shape must be positive sizes such as 3,224,224; got {text!r}") from None
    return shape


def _run_onnx(args, progress):
    """``--onnx FILE``: the ONNX comparison (see :mod:`fastconv.bench.onnxbench`)."""
    try:
        if getattr(args, "cases", None) is not None:
            raise ValueError("--cases and --onnx cannot be used together")
        if getattr(args, "per_algo", None) or getattr(args, "interleave", False):
            raise ValueError("--per-algo and --interleave do not apply to --onnx")
        batches = parse_batches(args.batch if args.batch is not None else "1")
        threads = thread_list(args.threads, quick=True)
        if args.repeat is not None and args.repeat < 1:
            raise ValueError(f"--repeat must be a positive int, got {args.repeat}")
        shape = None if args.input_shape is None else _input_shape(args.input_shape)
        if args.json:
            output_file(args.json, "--json")  # before the timing, not after it
        repeat = args.repeat or (1 if args.quick else DEFAULT_REPEAT)
        env = environment()
        kw = {"min_time": MIN_TIME_QUICK} if args.quick else {}
        results = run_onnx(args.onnx, batches, threads, repeat, input_shape=shape, progress=progress, **kw)
    except (TypeError, ValueError, OSError) as e:
        print(f"fastconv bench: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(format_environment(env))
    print()
    print(f"{args.onnx}: latency per batch (median of {repeat}); 'vs ref' = time / the compiled plan's "
          "time (above 1: the plan is faster); diffs against model.forward")
    print()
    print(format_onnx_table(results), end="")
    if args.json:
        _write_json(args, env, results)
    return 0


def _write_json(args, env, results):
    with open(args.json, "w") as f:
        arguments = {k: v for k, v in vars(args).items() if k != "func"}
        json.dump({"environment": env, "arguments": arguments, "results": results}, f, indent=1)
        f.write("\n")


def run_from_args(args):
    """Run the benchmark for parsed arguments (of :func:`add_parser`); return the exit code."""
    progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    if getattr(args, "onnx", None) is not None:
        return _run_onnx(args, progress)
    try:
        for opt in ("batch", "input_shape"):
            if getattr(args, opt, None) is not None:
                raise ValueError(f"--{opt.replace('_', '-')} needs --onnx FILE")
        names = select_cases(args.cases if args.cases is not None else "all")
        threads = thread_list(args.threads, args.quick)
        if args.repeat is not None and args.repeat < 1:
            raise ValueError(f"--repeat must be a positive int, got {args.repeat}")
        if args.json:
            output_file(args.json, "--json")  # before the timing, not after it
    except (TypeError, ValueError) as e:
        print(f"fastconv bench: error: {e}", file=sys.stderr)
        return 2
    env = environment()
    results = run(names, threads, args.repeat, quick=args.quick, per_algo=args.per_algo, progress=progress,
                  interleave=getattr(args, "interleave", False))
    try:
        env["loadavg_end"] = list(os.getloadavg())
    except OSError:
        env["loadavg_end"] = None
    print(format_environment(env))
    print()
    print(format_table(results), end="")
    if args.json:
        _write_json(args, env, results)
    return 0


def main(argv=None):
    """``python -m fastconv.bench [--threads 1,2] [--cases ...] [--repeat R] [--json PATH] [--quick]``,
    or ``... --onnx FILE [--batch 1,8]``."""
    parser = _add_arguments(argparse.ArgumentParser(
        prog="fastconv bench",
        description="Time fastconv against a plain-NumPy baseline and PyTorch (when installed).",
    ))
    return run_from_args(parser.parse_args(argv))
