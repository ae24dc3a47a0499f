"""``fastconv predict``: run a saved model (.npz or .onnx) on the arrays of a .npy file."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .._args.paths import input_file, output_file, samples_array
from .._fileio import atomic_write
from .._runtime import get_num_threads, set_num_threads
from .._version import __version__
from ..bench import onnxfile
from ..checkpoint import CheckpointError, load_model, read_metadata
from ..inference import compile as fc_compile
from ._common import CLIError, one_line, positive_int

__all__ = ["add_parser", "run", "SHOW"]

#: How many predicted classes the summary lists.
SHOW = 20


def add_parser(sub):
    p = sub.add_parser(
        "predict",
        help="run a saved model (.npz or .onnx) on the inputs in a .npy file",
        description=(
            "Run MODEL (a .npz written by `fastconv train` or `fastconv compress`, or an .onnx file, "
            "which needs `pip install 'fastconv[onnx]'`) in eval mode on the array in --input "
            "(N samples along the first axis, e.g. (N, C, H, W) images in the model's dtype), "
            "batch by batch. Prints the output's shape and, for a classifier, the predicted classes "
            "(argmax); --output saves the whole output as a .npy file."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="a .npz model or checkpoint, or an .onnx file")
    p.add_argument("--input", required=True, metavar="FILE.npy", help="the inputs: a .npy array, samples first")
    p.add_argument("--batch-size", type=positive_int, default=256, help="samples per forward (default: 256)")
    p.add_argument("--output", default=None, metavar="OUT.npy", help="save the model's outputs here (.npy)")
    p.add_argument("--compiled", dest="compiled", action="store_true", default=None,
                   help="run through the compiled plan (fastconv.compile); an error if the network "
                        "cannot be compiled. Default: the plan when the network compiles, else model.forward")
    p.add_argument("--no-compiled", dest="compiled", action="store_false",
                   help="run model.forward (un-fused) instead of the compiled plan")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads for the native kernels (default: fastconv's default)")
    return p


# ---------------------------------------------------------------- checks, before any work


def _model_kind(path):
    try:
        p = input_file(path, "the model", (".npz", ".onnx"),
                       "a .npz file (fastconv train --save) or an .onnx file")
    except (TypeError, ValueError, OSError) as exc:
        raise CLIError(one_line(exc)) from None
    return p.suffix.lower()


def _read_input(path):
    try:
        p = input_file(path, "the input", (".npy",), "a .npy file (numpy.save)")
    except (TypeError, ValueError, OSError) as exc:
        raise CLIError(one_line(exc)) from None
    try:
        x = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise CLIError(f"the input {path} holds Python objects (object dtype); "
                           "predict needs a numeric array") from None
        raise CLIError(f"the input {path} is not a readable .npy file: {one_line(exc)}") from None
    except (OSError, EOFError) as exc:
        raise CLIError(f"the input {path} is not a readable .npy file: {one_line(exc)}") from None
    try:
        # np.load gives an NpzFile for a .npz renamed .npy: not an array
        return samples_array(x, f"the input {path}")
    except ValueError as exc:
        raise CLIError(one_line(exc)) from None


def _cast(x, dtype, path):
    """``x`` in the model's dtype: the same dtype, or one that converts exactly (integers,
    float16); a lossy conversion (float64 -> float32) is an error, as in PyTorch."""
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if np.can_cast(x.dtype, dtype, "safe"):
        return x.astype(dtype)
    raise CLIError(f"the input {path} is {x.dtype} but the model computes in {dtype.name}: "
                   f"convert it (x.astype(numpy.{dtype.name})) and save again")


def _check_output(path):
    if path is None:
        return None
    if not str(path).lower().endswith(".npy"):
        raise CLIError(f"--output {path}: the output file must end in .npy")
    try:
        return output_file(path, "--output")
    except (TypeError, ValueError) as exc:
        raise CLIError(one_line(exc)) from None


# ---------------------------------------------------------------- the model


class _Runner:
    """``runner(x_batch) -> y``: one network (one per batch size for an ONNX file, whose shape
    arithmetic is folded for one input size), through its compiled plan or model.forward."""

    def __init__(self, build, compiled, name):
        self.build, self.want_compiled, self.name = build, compiled, name
        self.fns = {}
        self.compiled = None
        self.note = ""

    def _make(self, shape):
        model = self.build(shape)
        if self.want_compiled is False:
            self.compiled = False
            return model.forward
        try:
            plan = fc_compile(model)
        except (TypeError, ValueError, NotImplementedError) as exc:
            if self.want_compiled:
                raise CLIError(f"--compiled: {self.name} cannot be compiled: {one_line(exc)}") from None
            self.compiled = False
            self.note = f" (not compilable: {one_line(exc).split(': ')[0]})"  # the reason, not the list
            return model.forward
        self.compiled = True
        return plan

    def __call__(self, x):
        fn = self.fns.get(x.shape)
        if fn is None:
            fn = self.fns[x.shape] = self._make(x.shape)
        return fn(x)


def _npz(path, x, compiled, input_path):
    try:
        meta = read_metadata(path)
        model = load_model(path)
    except (OSError, CheckpointError) as exc:
        raise CLIError(f"cannot load the model {path}: {one_line(exc)}") from None
    except (TypeError, ValueError) as exc:
        raise CLIError(f"cannot rebuild the network of {path}: {one_line(exc)} (predict needs a file "
                       "written by fastconv train or fastconv compress)") from None
    model.eval()
    x = _cast(x, model.dtype, input_path)
    kw = meta.get("kwargs") if isinstance(meta.get("kwargs"), dict) else {}
    c, s = kw.get("in_channels"), kw.get("input_size")
    if x.ndim == 4 and ((c is not None and x.shape[1] != c) or (s is not None and x.shape[2:] != (s, s))):
        raise CLIError(f"the input has samples of {'x'.join(map(str, x.shape[1:]))}; {path} takes "
                       f"{c if c is not None else 'C'}x{s if s is not None else 'H'}x{s if s is not None else 'W'}")
    try:  # one sample first: any other mismatch is found before the long run
        model.forward(x[:1])
    except (TypeError, ValueError) as exc:
        raise CLIError(f"the input (samples of shape {x.shape[1:]}, {x.dtype}) does not fit {path}: "
                       f"{one_line(exc)}") from None
    name = f"{meta.get('builder', type(model).__name__)} ({np.dtype(model.dtype).name})"
    return _Runner(lambda shape: model, compiled, path), x, name


def _onnx(path, x, compiled, batch_size, input_path):
    shape = (min(batch_size, x.shape[0]),) + x.shape[1:]
    try:
        f = onnxfile.read(path)
        x = _cast(x, f.dtype, input_path)
        onnxfile.check_input(f, shape, what=f"a batch of {input_path}")
        built = {shape: onnxfile.network(f, shape)}  # built now: a bad file fails before the run
    except (OSError, ValueError) as exc:
        raise CLIError(one_line(exc)) from None

    def build(shape):
        if shape not in built:
            try:
                built[shape] = onnxfile.network(f, shape)
            except ValueError as exc:
                raise CLIError(one_line(exc)) from None
        return built[shape]

    return _Runner(build, compiled, path), x, f"ONNX {f.describe()}"


# ---------------------------------------------------------------- the command


def _summary(y, out_path):
    lines = [f"output: shape {y.shape}, {y.dtype}"]
    if y.ndim == 2 and y.shape[1] > 1:
        classes = np.argmax(y, axis=1)
        shown = " ".join(str(int(c)) for c in classes[:SHOW])
        more = "" if len(classes) <= SHOW else f" ... (first {SHOW} of {len(classes)}"
        more += "" if len(classes) <= SHOW else ("; all in --output)" if out_path else "; --output saves all)")
        lines.append(f"predicted classes (argmax of {y.shape[1]}): {shown}{more}")
        counts = np.bincount(classes, minlength=y.shape[1])
        lines.append("class counts: " + ", ".join(f"{k}: {int(n)}" for k, n in enumerate(counts) if n))
    return lines


def run(args):
    kind = _model_kind(args.model)
    x = _read_input(args.input)
    out_path = _check_output(args.output)
    if args.threads is not None:
        set_num_threads(args.threads)
    if kind == ".npz":
        runner, x, name = _npz(args.model, x, args.compiled, args.input)
    else:
        runner, x, name = _onnx(args.model, x, args.compiled, args.batch_size, args.input)
    n, bs = x.shape[0], args.batch_size
    t0 = time.perf_counter()
    parts = []
    try:
        for start in range(0, n, bs):
            parts.append(np.array(runner(np.ascontiguousarray(x[start:start + bs])), copy=True))
    except (TypeError, ValueError) as exc:
        raise CLIError(f"cannot run {args.model} on {args.input}: {one_line(exc)}") from None
    dt = time.perf_counter() - t0
    y = np.concatenate(parts, axis=0)
    how = "compiled plan" if runner.compiled else "model.forward"
    print(f"fastconv {__version__}: {args.model} ({name}) on {args.input}: {n:,} samples of "
          f"{'x'.join(map(str, x.shape[1:]))}, batch size {bs}, {how}{runner.note}, "
          f"{get_num_threads()} threads")
    for line in _summary(y, out_path):
        print(line)
    print(f"time: {dt * 1e3:.1f} ms ({n / dt:,.0f} samples/s)" if dt > 0 else "time: 0 ms")
    if out_path is not None:
        atomic_write(out_path, lambda fh: np.save(fh, y, allow_pickle=False))
        print(f"outputs saved to {out_path}")
    return 0
