"""``fastconv bench --onnx FILE``: one ONNX file through every engine at hand, side by side.

For each thread count and batch size the same random input (float, seed 0) runs
through:

* ``plan``: :func:`fastconv.compile` of the network :func:`fastconv.onnx.load` builds;
* ``forward``: that network's ``model.forward`` (eval mode, un-fused);
* ``onnxruntime``: an ``InferenceSession`` on the file (CPU, ``intra_op_num_threads``
  = the thread count, sequential execution, all graph optimisations);
* ``openvino``: ``Core().compile_model`` on the file (CPU, ``INFERENCE_NUM_THREADS``,
  f32 precision).

onnxruntime and OpenVINO are optional: a missing one is reported as "not
installed". Every output is compared with ``model.forward``'s (the largest
absolute difference, and that relative to the largest output magnitude).
Timing is :func:`fastconv._timing.measure` (warm-up, calibration, ``repeat``
samples, the median per call); the ratio column is an engine's time over the
reference's (the plan, or ``forward`` when the network cannot be compiled):
above 1 means the reference is faster. No timing is asserted anywhere.
"""

from __future__ import annotations

import numpy as np

from .. import _timing
from .._args import as_int
from ..inference import compile as fc_compile
from . import onnxfile
from .env import threads as thread_settings

__all__ = ["ENGINES", "parse_batches", "engine_runners", "run_onnx", "format_onnx_table", "ONNX_COLUMNS"]

#: The engines, in table order.
ENGINES = ("plan", "forward", "onnxruntime", "openvino")
ONNX_COLUMNS = ["threads", "batch", "engine", "ms", "images/s", "vs ref", "max |diff|", "rel diff", "notes"]


def parse_batches(text):
    """``"1,8"`` -> [1, 8]: a comma-separated list of distinct positive ints (ValueError otherwise)."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise ValueError(f"--batch must be a comma-separated list of positive ints, e.g. 1,8; got {text!r}")
    out = []
    for p in parts:
        try:
            b = as_int(int(p), "--batch", minimum=1)
        except (TypeError, ValueError):
            raise ValueError(f"--batch must be a comma-separated list of positive ints, e.g. 1,8; "
                             f"got {text!r}") from None
        if b not in out:
            out.append(b)
    return out


def _onnxruntime(path, threads):
    """(run(x) -> y, version) of an onnxruntime session on ``path``; (None, reason) when missing."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "not installed"
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return (lambda x: sess.run(None, {name: x})[0]), f"onnxruntime {ort.__version__}"


def _openvino(path, threads):
    """(run(x) -> y, version) of an OpenVINO CPU model compiled from ``path``; (None, reason)."""
    try:
        import openvino as ov
    except ImportError:
        return None, "not installed"
    core = ov.Core()
    compiled = core.compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    out = compiled.output(0)
    return (lambda x: np.asarray(request.infer([x])[out])), f"openvino {ov.__version__}"


def engine_runners(path, threads, engines=("onnxruntime", "openvino")):
    """{engine: (run or None, note)} for the third-party engines on the ONNX file ``path``;
    an engine that is missing or fails to load the file has run None and says why."""
    makers = {"onnxruntime": _onnxruntime, "openvino": _openvino}
    out = {}
    for name in engines:
        try:
            out[name] = makers[name](path, threads)
        except Exception as e:  # the engine's own error types: report, go on with the others
            out[name] = (None, f"failed: {type(e).__name__}: {' '.join(str(e).split())[:160]}")
    return out


def _diff(y, want):
    y = np.asarray(y, dtype=np.float64)
    if y.shape != want.shape:
        return None, None, f"output shape {y.shape}, forward's {want.shape}"
    d = float(np.max(np.abs(y - want))) if want.size else 0.0
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    return d, (d / scale if scale > 0 else d), ""


def run_onnx(path, batches, threads, repeat, min_time=_timing.MIN_TIME, input_shape=None, progress=None):
    """Time the ONNX file ``path`` in every engine; a list of result rows (dicts).

    ``batches``: batch sizes; ``threads``: thread counts; ``input_shape``: (C, H, W, ...)
    when the file leaves those sizes free. Raises ValueError (FileNotFoundError) before any
    timing when the file cannot be read or built for one of the input shapes.
    """
    f = onnxfile.read(path)
    sample = list(f.dims[1:])
    if input_shape is not None:
        if len(input_shape) != len(sample):
            raise ValueError(f"--input-shape {tuple(input_shape)} has {len(input_shape)} sizes; "
                             f"{path} takes {f.describe()}")
        sample = [int(s) for s in input_shape]
    if any(d is None for d in sample):
        raise ValueError(f"{path} takes {f.describe()}: give the free sizes with --input-shape")
    nets = {b: onnxfile.network(f, [b] + sample) for b in batches}  # every shape checked first
    rows = []
    for t in threads:
        third = engine_runners(f.path, t)
        with thread_settings(t, None):
            for b in batches:
                rows += _one_case(f, nets[b], [b] + sample, third, t, repeat, min_time, progress)
    return rows


def _one_case(f, model, shape, third, t, repeat, min_time, progress):
    b = shape[0]
    x = np.random.default_rng(0).standard_normal(shape).astype(f.dtype)
    notes = {}
    fns = {}
    try:
        plan = fc_compile(model)
        fns["plan"] = lambda: plan(x)
    except (TypeError, ValueError, NotImplementedError) as e:
        notes["plan"] = f"cannot compile: {' '.join(str(e).split())[:160]}"
    fns["forward"] = lambda: model.forward(x)
    for name, (run, note) in third.items():
        if run is None:
            notes[name] = note
        else:
            fns[name] = (lambda r: lambda: r(x))(run)
            notes[name] = note
    want = np.asarray(model.forward(x), dtype=np.float64)
    diffs = {}
    for name in list(fns):
        try:
            diffs[name] = _diff(fns[name](), want)
        except Exception as e:  # an engine failing on this input: report it, time the rest
            notes[name] = f"failed: {type(e).__name__}: {' '.join(str(e).split())[:160]}"
            del fns[name]
    if progress:
        progress(f"onnx {f.path}: threads {t}, batch {b}: timing {', '.join(fns)}")
    times, _ = _timing.measure(fns, repeat, min_time)
    ref = "plan" if "plan" in times else "forward"
    rows = []
    for name in ENGINES:
        s = times.get(name)
        d, rel, dnote = diffs.get(name, (None, None, ""))
        note = "; ".join(n for n in (notes.get(name, ""), dnote) if n)
        rows.append({"kind": "onnx", "file": f.path, "threads": t, "batch": b, "engine": name,
                     "seconds": s, "images_per_s": None if not s else b / s,
                     "vs_ref": None if s is None or not times.get(ref) else s / times[ref], "ref": ref,
                     "max_abs_diff": d, "rel_diff": rel, "notes": note})
    return rows


def _ms(s):
    return "-" if s is None else f"{s * 1e3:.3f}"


def _g(v):
    return "-" if v is None else f"{v:.1e}"


def format_onnx_table(rows):
    """A markdown table of :func:`run_onnx`'s rows."""
    header = "| " + " | ".join(ONNX_COLUMNS) + " |\n|" + "|".join("---" for _ in ONNX_COLUMNS) + "|\n"
    lines = []
    for r in rows:
        ratio = "-" if r["vs_ref"] is None else ("(ref)" if r["engine"] == r["ref"] else f"{r['vs_ref']:.2f}x")
        ips = "-" if r["images_per_s"] is None else f"{r['images_per_s']:.0f}"
        diff = "(ref)" if r["engine"] == "forward" else _g(r["max_abs_diff"])
        rel = "(ref)" if r["engine"] == "forward" else _g(r["rel_diff"])
        cells = [r["threads"], r["batch"], r["engine"], _ms(r["seconds"]), ips, ratio, diff, rel, r["notes"] or ""]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return header + "\n".join(lines) + "\n"
