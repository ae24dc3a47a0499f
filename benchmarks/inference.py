"""Inference latency: model.forward, the compiled plan, PyTorch and onnxruntime.

    python benchmarks/inference.py --repeat 7 --sample-ms 50    # 2 threads, every model, batch 1 and large
    python benchmarks/inference.py --threads 1 --models resnet18 --batches 1 --profile

lenet5 and vgg_small are built by fastconv.models (float32, seed 0); the same
architecture is built in torch.nn with the same weights, and exported from there
to ONNX (torch.onnx.export, dynamo=False) for onnxruntime. resnet18,
mobilenet_v2 and squeezenet1_1 (224x224) are built in torch.nn by
benchmarks/zoo.py (torchvision's architectures, random weights), exported once
to ONNX, and that one file is what fastconv loads (fastconv.onnx.load ->
model.forward and fastconv.compile) and what onnxruntime and OpenVINO (when
importable) run. Sessions use --threads threads. Every implementation's output
is checked against model.forward first. The large batch ("L" in --batches) is
64 for the 32x32 models and 8 for the 224x224 ones.

Timing: --repeat rounds; in each round every implementation is sampled once,
one right after the other (so slow load drifts hit them alike); a sample is
the median per-call time of calls made back to back for at least --sample-ms,
taken after --settle-ms of untimed calls of the same implementation. The
settling matters: onnxruntime's idle pool threads keep spinning after a run,
and the engine sampled next lost up to 2x for tens of milliseconds (OpenVINO
right after onnxruntime: squeezenet1_1 at batch 1 took 3.9 ms without
settling, 2.0-2.7 ms with 20 ms of it).
The table gives each implementation's best sample (best-of-N medians) and the
ratios: "ort/plan" > 1 means the plan is faster than onnxruntime, "fwd/plan"
is how much slower model.forward is than the plan. On a shared machine only
ratios from one run mean anything. torch and onnxruntime are optional.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

import fastconv
from fastconv import nn
from fastconv.models import get_model

INPUT = {"lenet5": (1, 28, 28), "vgg_small": (3, 32, 32), "resnet_small": (3, 32, 32)}
ZOO = ("resnet18", "mobilenet_v2", "squeezenet1_1")
LARGE = {"lenet5": 64, "vgg_small": 64, "resnet_small": 64}


def torch_model(model):
    """The same network in torch.nn with the same weights (eval mode)."""
    import torch

    def conv(m):
        t = torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                            m.padding, m.dilation, m.groups, m.bias is not None)
        t.weight.data = torch.from_numpy(m.weight.data.copy())
        if m.bias is not None:
            t.bias.data = torch.from_numpy(m.bias.data.copy())
        return t

    def convert(m):
        if isinstance(m, nn.Sequential):
            return torch.nn.Sequential(*[convert(c) for c in m])
        if isinstance(m, nn.Conv2D):
            return conv(m)
        if isinstance(m, nn.Linear):
            t = torch.nn.Linear(m.in_features, m.out_features, m.bias is not None)
            t.weight.data = torch.from_numpy(m.weight.data.copy())
            if m.bias is not None:
                t.bias.data = torch.from_numpy(m.bias.data.copy())
            return t
        if isinstance(m, nn.BatchNorm2D):
            t = torch.nn.BatchNorm2d(m.num_features, m.eps, affine=m.affine)
            t.running_mean.data = torch.from_numpy(m.running_mean.copy())
            t.running_var.data = torch.from_numpy(m.running_var.copy())
            if m.affine:
                t.weight.data = torch.from_numpy(m.weight.data.copy())
                t.bias.data = torch.from_numpy(m.bias.data.copy())
            return t
        if isinstance(m, nn.MaxPool2D):
            return torch.nn.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation,
                                      ceil_mode=m.ceil_mode)
        if isinstance(m, nn.GlobalAvgPool2D):
            return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        if isinstance(m, nn.Residual):
            return _TorchResidual(convert(m.body),
                                  None if m.shortcut is None else convert(m.shortcut))
        simple = {nn.ReLU: torch.nn.ReLU, nn.Flatten: torch.nn.Flatten, nn.Tanh: torch.nn.Tanh,
                  nn.Sigmoid: torch.nn.Sigmoid}
        for k, v in simple.items():
            if isinstance(m, k):
                return v()
        raise TypeError(f"no torch equivalent for {type(m).__name__}")

    return convert(model).eval()


def _torch_residual_class():
    import torch

    class Residual(torch.nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    return Residual


def _TorchResidual(body, shortcut):
    return _torch_residual_class()(body, shortcut)


def ort_session(tmodel, shape, threads):
    import onnxruntime as ort
    import torch

    path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    torch.onnx.export(tmodel, torch.zeros(shape), path, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"x": x})[0]


def ort_file_session(path, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"x": x})[0]


def openvino_session(path, threads, shape):
    """An OpenVINO CPU model of ``path`` for inputs of ``shape`` (f32 precision), or None."""
    try:
        import openvino as ov
    except ImportError:
        return None
    core = ov.Core()
    m = core.read_model(path)
    m.reshape({m.inputs[0].any_name: list(shape)})
    cm = core.compile_model(m, "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
    req = cm.create_infer_request()
    return lambda x: req.infer({0: x})[cm.outputs[0]]


def zoo_models(name, threads):
    """(fastconv model, torch model, path of the ONNX file) of a benchmarks/zoo.py network."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import zoo

    import fastconv.onnx

    tmodel = zoo.build(name, seed=0)
    path = zoo.export(tmodel, os.path.join(tempfile.mkdtemp(), f"{name}.onnx"), (1,) + zoo.INPUT[name])
    return fastconv.onnx.load(path), tmodel, path


def sample(fn, min_s, settle_s=0.0):
    """Median per-call seconds of calls made back to back for at least min_s, after
    settle_s of untimed calls (so the previous engine's idle threads are asleep)."""
    start = time.perf_counter()
    while time.perf_counter() - start < settle_s:
        fn()
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        if t1 - start >= min_s and len(times) >= 3:
            return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="lenet5,vgg_small," + ",".join(ZOO))
    ap.add_argument("--batches", default="1,L", help="batch sizes; L: the model's large batch")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--sample-ms", type=float, default=100.0)
    ap.add_argument("--settle-ms", type=float, default=20.0,
                    help="untimed calls before each sample, in ms (lets the previous engine's threads idle)")
    ap.add_argument("--profile", action="store_true", help="print the plan's per-op times")
    ap.add_argument("--tune", action="store_true", help="fastconv.compile(model, tune=True)")
    args = ap.parse_args(argv)
    if args.repeat < 1 or not args.sample_ms > 0 or not args.settle_ms >= 0:
        ap.error(f"--repeat must be at least 1, --sample-ms above 0 and --settle-ms at least 0 "
                 f"(got {args.repeat}, {args.sample_ms}, {args.settle_ms})")

    fastconv.set_num_threads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        onnxruntime = None
    print(f"fastconv {fastconv.__version__} ({fastconv.__file__}), threads {args.threads}, "
          f"isa {fastconv._kernels.isa()}, torch {torch.__version__ if torch else '-'}, "
          f"onnxruntime {onnxruntime.__version__ if onnxruntime else '-'}")
    rows = []
    for name in args.models.split(","):
        path = None
        if name in ZOO:
            model, tmodel, path = zoo_models(name, args.threads)
            shape = (3, 224, 224)
        else:
            model = get_model(name, seed=0).eval()
            tmodel = torch_model(model) if torch else None
            shape = INPUT[name]
        plan = fastconv.compile(model, tune=args.tune)
        for b in args.batches.split(","):
            batch = (8 if name in ZOO else LARGE[name]) if b == "L" else int(b)
            x = np.random.default_rng(0).standard_normal((batch,) + shape).astype(np.float32)
            want = model.forward(x)
            impls = {"forward": lambda: model.forward(x), "plan": lambda: plan(x)}
            if torch:
                tx = torch.from_numpy(x)

                def run_torch():
                    with torch.inference_mode():
                        return tmodel(tx).numpy()

                impls["torch"] = run_torch
                if onnxruntime:
                    try:
                        run = (ort_file_session(path, args.threads) if path
                               else ort_session(tmodel, x.shape, args.threads))
                        impls["ort"] = lambda: run(x)
                    except Exception as e:  # export needs onnx; report and go on
                        print(f"  onnxruntime skipped for {name}: {type(e).__name__}: {e}")
                if path:
                    ov_run = openvino_session(path, args.threads, x.shape)
                    if ov_run is not None:
                        impls["ov"] = lambda: ov_run(x)
            scale = float(np.abs(want).max())
            for k, f in impls.items():
                err = float(np.abs(np.asarray(f()) - want).max()) / scale
                if err > 1e-4:
                    print(f"  WARNING {name} batch {batch} {k}: relative error {err:.2e}")
            best = {k: float("inf") for k in impls}
            for _ in range(args.repeat):
                for k, f in impls.items():
                    best[k] = min(best[k], sample(f, args.sample_ms / 1e3, args.settle_ms / 1e3))
            rows.append((name, batch, best))
            if args.profile:
                for op, t in plan.profile(x, repeat=50):
                    print(f"    {name} b{batch}  {op:<46s} {t * 1e6:8.1f} us")

    cols = ["forward", "plan", "torch", "ort", "ov"]
    print(f"\n{'model':<14}{'batch':>6}" + "".join(f"{c + ' ms':>11}" for c in cols)
          + f"{'fwd/plan':>10}{'torch/plan':>11}{'ort/plan':>10}{'ov/plan':>9}")
    for name, batch, best in rows:
        ms = "".join(f"{best[c] * 1e3:11.3f}" if c in best else f"{'-':>11}" for c in cols)
        r = lambda c: f"{best[c] / best['plan']:.2f}x" if c in best else "-"  # noqa: E731
        print(f"{name:<14}{batch:>6}{ms}{r('forward'):>10}{r('torch'):>11}{r('ort'):>10}{r('ov'):>9}")
    # geomeans of the ratios: batch 1, and each model's largest batch
    for label, pick in (("batch 1", lambda bs: 1 if 1 in bs else None), ("large batch", max)):
        chosen = []
        for name in dict.fromkeys(n for n, _, _ in rows):
            bs = [b for n, b, _ in rows if n == name]
            b = pick(bs)
            if b is not None and (label == "batch 1" or b > 1):
                chosen += [best for n, bb, best in rows if n == name and bb == b]
        for c in ("forward", "torch", "ort", "ov"):
            rs = [best[c] / best["plan"] for best in chosen if c in best]
            if rs:
                gm = float(np.exp(np.mean(np.log(rs))))
                print(f"geomean {c}/plan at {label} over {len(rs)} models: {gm:.2f}x "
                      f"(min {min(rs):.2f}x)")
    print(f"\n{' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
