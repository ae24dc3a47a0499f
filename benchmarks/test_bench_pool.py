"""pytest-benchmark suite: max and average pooling of the benchmark set.

One test function per implementation, parametrized by (case, op, pass); compare them with
``pytest benchmarks/test_bench_pool.py --benchmark-group-by=param``.
"""

import pytest

from fastconv import bench

PASSES = ("fwd", "fwd+bwd")
params = pytest.mark.parametrize("pass_", PASSES)
ops = pytest.mark.parametrize("op", ("max", "avg"))
cases = pytest.mark.parametrize("case", list(bench.POOL_CASES))


def _bench(run_bench, case, op, pass_, impl, torch=None):
    info, impls = bench.pool_impls(case, op, torch)
    run_bench(impls[impl][PASSES.index(pass_)], **info["shape"])


@params
@ops
@cases
def test_pool_fastconv(run_bench, case, op, pass_):
    _bench(run_bench, case, op, pass_, "fastconv")


@params
@ops
@cases
def test_pool_numpy(run_bench, case, op, pass_):
    _bench(run_bench, case, op, pass_, "numpy")


@params
@ops
@cases
def test_pool_torch(run_bench, case, op, pass_, torch):
    _bench(run_bench, case, op, pass_, "torch", torch)
