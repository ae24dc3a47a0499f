"""The comparison runner behind ``fastconv bench`` (also ``python -m fastconv.bench``).

It times, side by side in one process and one run, fastconv against a good
plain-NumPy implementation (:mod:`fastconv._numpy_baseline`) and against
PyTorch's CPU kernels when ``torch`` can be imported, on the benchmark layer set
(:mod:`fastconv.bench.cases`, tabulated in BENCHMARKS.md):

* ``conv`` cases: forward, and forward + backward (backward-data,
  backward-weight and bias gradient), for fastconv's ``algo="auto"`` and, when
  one call is cheap enough, each of its algorithms forced (``im2col``,
  ``direct``, ``gemm``, ``winograd``: whatever ``fastconv.functional.ALGOS`` lists);
  reported as milliseconds, GFLOP/s (forward FLOPs = 2 N K (C/groups) R S P Q,
  backward twice that) and as a fraction of the machine's matrix-multiply peak;
* ``pool`` cases: max and average pooling, forward and forward + backward;
* ``train`` cases: one SGD-with-momentum step of ``lenet5`` / ``vgg_small`` / ``resnet_small``
  (batch 64, softmax cross-entropy) as images per second.

The machine's peak is NumPy's float32 2048 x 2048 ``matmul`` rate, measured in
the same run for each thread count (the best sample, taken before and after
that thread count's cases). For each thread count ``t`` fastconv runs
with ``fastconv.set_num_threads(t)``, NumPy's BLAS with ``t`` threads (through
``threadpoolctl`` when it is installed) and PyTorch with
``torch.set_num_threads(t)``.

Timing: every implementation is called once to warm up, then calibrated to a
number of calls per sample (so a sample lasts at least ``min_time``), then
sampled ``repeat`` times in a row (steady state: warm caches, thread pools
awake); the figure is the median per-call time. The implementations of one
case are measured one after the other within seconds. With ``interleave``
the samples are instead taken round-robin over the implementations, which
spreads slow drifts of a shared machine's load evenly but starts every sample
cold (on the 2-core development VM that made every library's 2-thread
figures up to 2-3x slower). Absolute times on a shared machine are noise;
the ratios of one run are the result. Speedups are
``other_time / fastconv_time``: above 1 means fastconv is faster.

No timing is asserted anywhere; this package only measures and reports.

The package: :mod:`~fastconv.bench.cases` (the layer set), :mod:`~fastconv.bench.env`
(environment probing, thread settings, the optional torch), :mod:`~fastconv.bench.impls`
(the fastconv, NumPy and PyTorch callables), :mod:`~fastconv.bench.runner` (timing loop and
result rows; the timer is :mod:`fastconv._timing`), :mod:`~fastconv.bench.report` (tables)
and :mod:`~fastconv.bench.cli` (the command line). ``fastconv bench --onnx FILE`` times one
ONNX model in fastconv, onnxruntime and OpenVINO (:mod:`~fastconv.bench.onnxbench`, reading
the file through :mod:`~fastconv.bench.onnxfile`); the pytest-benchmark suites in
``benchmarks/`` also time the 1-d and transposed convolutions
(:mod:`~fastconv.bench.opimpls`) and whole-model inference (:mod:`~fastconv.bench.inferimpls`).
"""

from __future__ import annotations

from .cases import (
    CONV1D_CASES,
    CONV_CASES,
    CONVT_CASES,
    INFER_BATCHES,
    INFER_CASES,
    GROUPS,
    POOL_CASES,
    TRAIN_BATCH,
    TRAIN_CASES,
    TRAIN_LR,
    TRAIN_MOMENTUM,
    case_params,
    convt_case,
    select_cases,
    thread_list,
)
from .cli import add_parser, main, run_from_args
from .env import environment
from .impls import algo_applies, auto_algo, conv_algos, conv_impls, pool_impls, train_impls
from .report import CONV_COLUMNS, PEAK_COLUMNS, POOL_COLUMNS, TRAIN_COLUMNS, format_environment, format_table
# The settings below are re-exported to be read; the runner reads its own module's
# (patch fastconv.bench.runner.PEAK_SIZE, not fastconv.bench.PEAK_SIZE).
from .runner import (
    DEFAULT_REPEAT,
    INTERLEAVE,
    MIN_TIME,
    MIN_TIME_QUICK,
    PEAK_SIZE,
    SLOW_REL,
    run,
)

__all__ = [
    "CONV_CASES",
    "POOL_CASES",
    "TRAIN_CASES",
    "CONV1D_CASES",
    "CONVT_CASES",
    "INFER_CASES",
    "INFER_BATCHES",
    "convt_case",
    "select_cases",
    "conv_algos",
    "auto_algo",
    "algo_applies",
    "conv_impls",
    "pool_impls",
    "train_impls",
    "run",
    "format_table",
    "environment",
    "add_parser",
    "main",
]
