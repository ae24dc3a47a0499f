"""pytest-benchmark suite: one training step (batch 64, SGD with momentum, softmax
cross-entropy) of lenet5 and vgg_small, fastconv against an equivalent PyTorch model.

Images per second = 64 / the reported time. Compare with
``pytest benchmarks/test_bench_train.py --benchmark-group-by=param``.
"""

import pytest

from fastconv import bench

models = pytest.mark.parametrize("model", list(bench.TRAIN_CASES))


def _bench(run_bench, model, impl, torch=None):
    impls, notes = bench.train_impls(model, torch)
    if impl not in impls:
        pytest.skip("; ".join(notes) or f"{impl} not available")
    run_bench(impls[impl], batch=bench.TRAIN_BATCH)


@models
def test_train_fastconv(run_bench, model):
    _bench(run_bench, model, "fastconv")


@models
def test_train_torch(run_bench, model, torch):
    _bench(run_bench, model, "torch", torch)
