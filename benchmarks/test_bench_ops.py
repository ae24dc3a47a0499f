"""pytest-benchmark suite: 1-d convolution and transposed convolution, fastconv against
PyTorch, forward and forward + backward (issue 14's operators).

Cases: ``CONV1D_CASES`` (``conv1d_audio`` is 16 x 64 x 4000 with 64 filters of width 9) and
``CONVT_CASES``, the transposed version of every convolution case of the benchmark layer set
(``resnet_3x3_t`` is ``resnet_3x3``'s adjoint). One test function per implementation,
parametrized by (case, pass), as in ``test_bench_conv.py``:
``pytest benchmarks/test_bench_ops.py --benchmark-group-by=param``.
``pass``: ``fwd`` or ``fwd+bwd`` (forward + backward-data + backward-weight + bias).
"""

import pytest

from fastconv import bench
from fastconv.bench.opimpls import conv1d_impls, convt_impls

PASSES = ("fwd", "fwd+bwd")
params = pytest.mark.parametrize("pass_", PASSES)
conv1d_cases = pytest.mark.parametrize("case", list(bench.CONV1D_CASES))
convt_cases = pytest.mark.parametrize("case", list(bench.CONVT_CASES))


def _bench(run_bench, make, case, pass_, impl, torch=None):
    info, impls = make(case, torch)
    gflop = info["flop_fwd"] * (1 if pass_ == "fwd" else 3) / 1e9
    run_bench(impls[impl][PASSES.index(pass_)], gflop=gflop, **info["shape"])


@params
@conv1d_cases
def test_conv1d_fastconv(run_bench, case, pass_):
    _bench(run_bench, conv1d_impls, case, pass_, "fastconv")


@params
@conv1d_cases
def test_conv1d_torch(run_bench, case, pass_, torch):
    _bench(run_bench, conv1d_impls, case, pass_, "torch", torch)


@params
@convt_cases
def test_conv_transpose2d_fastconv(run_bench, case, pass_):
    _bench(run_bench, convt_impls, case, pass_, "fastconv")


@params
@convt_cases
def test_conv_transpose2d_torch(run_bench, case, pass_, torch):
    _bench(run_bench, convt_impls, case, pass_, "torch", torch)
