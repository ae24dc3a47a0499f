"""pytest-benchmark suite: inference latency of lenet5 and vgg_small (float32, eval mode) at
batch 1 and 64: fastconv's compiled plan (``fastconv.compile``), ``model.forward``, and
onnxruntime on the ONNX file ``fastconv.onnx.save`` writes for the same model.

One test function per implementation, parametrized by (model, batch), so
``pytest benchmarks/test_bench_inference.py --benchmark-group-by=param`` puts them side by
side. Each implementation's output is checked against ``model.forward`` first (relative
difference below 1e-4 of the largest output; recorded as ``rel_diff`` in ``extra_info``).
onnxruntime uses fastconv's thread count (``FASTCONV_BENCH_THREADS`` sets both).
"""

import pytest

from fastconv import bench
from fastconv.bench.inferimpls import infer_impls

cases = pytest.mark.parametrize("model", list(bench.INFER_CASES))
batches = pytest.mark.parametrize("batch", list(bench.INFER_BATCHES))


def _bench(run_bench, model, batch, impl):
    info, impls, notes = infer_impls(model, batch, engines=("onnxruntime",) if impl == "onnxruntime" else ())
    if impl not in impls:
        pytest.skip(notes.get(impl, f"{impl} not available"))
    rel = info["rel_diff"][impl]
    assert rel < 1e-4, f"{impl} differs from model.forward by {rel:.1e} (relative)"
    run_bench(impls[impl], batch=batch, rel_diff=rel, input=info["input"])


@batches
@cases
def test_infer_plan(run_bench, model, batch):
    _bench(run_bench, model, batch, "plan")


@batches
@cases
def test_infer_forward(run_bench, model, batch):
    _bench(run_bench, model, batch, "forward")


@batches
@cases
def test_infer_onnxruntime(run_bench, model, batch):
    _bench(run_bench, model, batch, "onnxruntime")
