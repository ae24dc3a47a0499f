"""pytest-benchmark suite: convolution layers of the benchmark set.

One test function per implementation, parametrized by (case, pass), so
``pytest benchmarks/ --benchmark-group-by=param`` puts fastconv, its per-algorithm
variants, NumPy and PyTorch for one layer and pass side by side.
``pass``: ``fwd`` (forward) or ``fwd+bwd`` (forward + backward-data + backward-weight + bias).
"""

import pytest

from fastconv import bench

PASSES = ("fwd", "fwd+bwd")
params = pytest.mark.parametrize("pass_", PASSES)
cases = pytest.mark.parametrize("case", list(bench.CONV_CASES))


def _bench(run_bench, case, pass_, impl, torch=None):
    algos = ("auto",) if impl in ("fastconv", "numpy", "torch") else (impl,)
    info, impls = bench.conv_impls(case, torch, algos)
    gflop = info["flop_fwd"] * (1 if pass_ == "fwd" else 3) / 1e9
    run_bench(impls[impl][PASSES.index(pass_)], gflop=gflop, algo_auto=info["auto"],
                  **info["shape"])


@params
@cases
def test_conv_fastconv(run_bench, case, pass_):
    _bench(run_bench, case, pass_, "fastconv")


@params
@cases
def test_conv_fastconv_im2col(run_bench, case, pass_):
    _bench(run_bench, case, pass_, "im2col")


@params
@cases
def test_conv_fastconv_direct(run_bench, case, pass_):
    _bench(run_bench, case, pass_, "direct")


@params
@cases
def test_conv_numpy(run_bench, case, pass_):
    _bench(run_bench, case, pass_, "numpy")


@params
@cases
def test_conv_torch(run_bench, case, pass_, torch):
    _bench(run_bench, case, pass_, "torch", torch)
