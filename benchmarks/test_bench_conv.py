"""pytest-benchmark suite: convolution layers of the benchmark set.

One test function per implementation (fastconv with algo="auto", fastconv with each
algorithm forced, NumPy, PyTorch), parametrized by (case, pass), so
``pytest benchmarks/ --benchmark-group-by=param`` puts them side by side for one layer
and pass.
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
              algo_auto_backward=info["auto_backward"], **info["shape"])


@params
@cases
def test_conv_fastconv(run_bench, case, pass_):
    _bench(run_bench, case, pass_, "fastconv")


def _forced(algo):
    @params
    @cases
    def test(run_bench, case, pass_):
        if not bench.algo_applies(case, algo):
            pytest.skip(f"algo={algo!r} does not apply to {case}")
        _bench(run_bench, case, pass_, algo)

    test.__name__ = test.__qualname__ = f"test_conv_fastconv_{algo}"
    test.__doc__ = f"fastconv with algo={algo!r} forced."
    return test


# One test function per algorithm fastconv offers (im2col, direct, gemm, winograd, ...).
for _algo in bench.conv_algos():
    globals()[f"test_conv_fastconv_{_algo}"] = _forced(_algo)


@params
@cases
def test_conv_numpy(run_bench, case, pass_):
    _bench(run_bench, case, pass_, "numpy")


@params
@cases
def test_conv_torch(run_bench, case, pass_, torch):
    _bench(run_bench, case, pass_, "torch", torch)
