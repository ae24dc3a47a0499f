"""Compressed inference: int8 (fastconv.quantize) and structured pruning (fastconv.prune).

    python benchmarks/quantized.py                       # vgg_small, batch 64, 2 threads
    python benchmarks/quantized.py --model lenet5 --batch 1 --threads 1

Implementations, each on the same batch of ``--batch`` random images:

* ``f32 fwd``: the float32 ``model.forward`` (fastconv's own float kernels);
* ``f32 plan``: the float32 model through ``fastconv.compile``;
* ``int8``: ``fastconv.quantize(model, calibration)`` (per-channel weights, minmax),
  its ``forward`` (float32 in and out, int8 inside);
* ``ort f32`` / ``ort int8``: the same architecture and weights in torch.nn, exported
  to ONNX (``torch.onnx.export(..., dynamo=False)``), and that ONNX model quantized
  by ``onnxruntime.quantization.quantize_static`` (QDQ format, per-channel int8
  weights, uint8 activations, minmax calibration on the same images), each run by
  an onnxruntime session with ``intra_op_num_threads = --threads`` (idle workers not
  spinning, so that no implementation's threads steal the cores of the next);
* ``pruned fwd`` / ``pruned plan``: ``fastconv.prune(model, --prune)`` (structured:
  that fraction of every layer's channels removed), forward and compiled.

Timing (as benchmarks/inference.py): --repeat rounds, every implementation sampled
once per round, one after the other; a sample is the median time of calls made back
to back for --sample-ms; the table gives each one's best sample. The machine is
shared, so only the ratios of one run mean anything. The agreement of the int8
outputs with the float model (max |difference| / max |float output|, and the
fraction of equal argmax) is printed too.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

import fastconv
from fastconv.models import get_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inference import INPUT, sample, torch_model  # noqa: E402


def ort_sessions(tmodel, shape, calib, threads):
    """(float run, int8 run) onnxruntime callables for the torch model."""
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    d = tempfile.mkdtemp()
    f32, q8 = os.path.join(d, "f32.onnx"), os.path.join(d, "int8.onnx")
    torch.onnx.export(tmodel, torch.zeros(shape), f32, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": calib[i:i + 64]} for i in range(0, len(calib), 64)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(f32, q8, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)

    def session(path):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting workers: a session's idle threads would otherwise spin on the
        # cores while the next implementation is timed (as fastconv's OpenMP threads wait
        # passively)
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        return lambda x: s.run(None, {"x": x})[0]

    return session(f32), session(q8)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="vgg_small")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prune", type=float, default=0.5)
    ap.add_argument("--calibration", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--sample-ms", type=float, default=150.0)
    ap.add_argument("--no-ort", action="store_true")
    args = ap.parse_args(argv)

    fastconv.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    shape = (args.batch,) + INPUT[args.model]
    x = rng.standard_normal(shape).astype(np.float32)
    calib = rng.standard_normal((args.calibration,) + INPUT[args.model]).astype(np.float32)

    model = get_model(args.model, seed=0).eval()
    # small random biases, as a trained model has: with the builders' all-zero biases the
    # ONNX export shares one zero initializer through Identity nodes, which keeps
    # onnxruntime from fusing its QDQ graph into int8 convolutions (8x slower)
    for m in model.modules():
        if isinstance(m, (fastconv.nn.Conv2D, fastconv.nn.Linear)) and m.bias is not None:
            m.bias.data[...] = rng.normal(0, 0.05, m.bias.shape)
    want = model.forward(x)
    q = fastconv.quantize(model, calib)
    pruned = fastconv.prune(model, args.prune).eval()
    impls = {
        "f32 fwd": lambda: model.forward(x),
        "f32 plan": (lambda p: lambda: p(x))(fastconv.compile(model)),
        "int8": lambda: q.forward(x),
        "pruned fwd": lambda: pruned.forward(x),
        "pruned plan": (lambda p: lambda: p(x))(fastconv.compile(pruned)),
    }
    versions = f"fastconv {fastconv.__version__}, int8 isa {fastconv._kernels.qisa()}"
    outs = {"int8": q.forward(x)}
    if not args.no_ort:
        try:
            import onnxruntime
            import torch

            torch.set_num_threads(args.threads)
            ort_f32, ort_q8 = ort_sessions(torch_model(model), shape, calib, args.threads)
            impls["ort f32"] = lambda: ort_f32(x)
            impls["ort int8"] = lambda: ort_q8(x)
            outs["ort int8"] = ort_q8(x)
            versions += f", onnxruntime {onnxruntime.__version__}, torch {torch.__version__}"
        except ImportError as e:
            print(f"onnxruntime comparison skipped: {e}")
    print(f"{versions}; {args.model} batch {args.batch}, {args.threads} threads")

    scale = float(np.abs(want).max())
    for k, y in outs.items():
        print(f"  {k:>9} vs float: max |diff| / max |y| = {np.abs(y - want).max() / scale:.4f}, "
              f"same argmax {np.mean(y.argmax(1) == want.argmax(1)):.3f}")
    best = {k: float("inf") for k in impls}
    for _ in range(args.repeat):
        for k, f in impls.items():
            best[k] = min(best[k], sample(f, args.sample_ms / 1e3))

    print(f"\n{'implementation':<16}{'ms':>10}")
    for k, t in best.items():
        print(f"{k:<16}{t * 1e3:10.2f}")
    r = lambda a, b: f"{best[a] / best[b]:.2f}x" if a in best and b in best else "-"  # noqa: E731
    print(f"\nint8 speed-up over f32 fwd: {r('f32 fwd', 'int8')}, over f32 plan: {r('f32 plan', 'int8')}, "
          f"over ort int8: {r('ort int8', 'int8')} (ort int8 over ort f32: {r('ort f32', 'ort int8')})")
    print(f"pruned {args.prune:.0%} speed-up: fwd {r('f32 fwd', 'pruned fwd')}, plan {r('f32 plan', 'pruned plan')}")
    print(f"model sizes: float32 {fastconv.qlayers.fmt_bytes(q.float_bytes)}, int8 "
          f"{fastconv.qlayers.fmt_bytes(q.nbytes())} ({q.nbytes() / q.float_bytes:.2f}x), pruned "
          f"{fastconv.qlayers.fmt_bytes(4 * pruned.num_parameters())} "
          f"({pruned.num_parameters() / model.num_parameters():.2f}x parameters)")
    print(f"\n{' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
