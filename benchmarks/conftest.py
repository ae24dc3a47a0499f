"""Shared fixtures of the pytest-benchmark suites (run with ``pytest benchmarks/``).

Thread counts: by default fastconv, NumPy's BLAS and PyTorch each use their own default
(normally every core). Set ``FASTCONV_BENCH_THREADS=n`` to run all three with ``n`` threads.
"""

import os

import pytest

from fastconv.bench import env


@pytest.fixture(scope="session", autouse=True)
def bench_threads():
    """Apply FASTCONV_BENCH_THREADS (if set) to fastconv, NumPy's BLAS and torch."""
    value = os.environ.get("FASTCONV_BENCH_THREADS")
    if not value:
        yield None
        return
    try:
        n = int(value)
        if n < 1:
            raise ValueError
    except ValueError:
        raise pytest.UsageError(f"FASTCONV_BENCH_THREADS must be a positive int, got {value!r}") from None
    with env.threads(n, env.import_torch()):
        yield n


@pytest.fixture(scope="session")
def torch():
    """The torch module, or skip the benchmark when it cannot be imported."""
    mod = env.import_torch()
    if mod is None:
        pytest.skip("torch is not importable (it is only a comparison, never a dependency)")
    return mod


@pytest.fixture
def run_bench(benchmark):
    """``run_bench(fn, **extra)``: warm ``fn`` up once, record ``extra`` in the report, then let
    pytest-benchmark time it."""

    def run(fn, **extra):
        fn()
        benchmark.extra_info.update(extra)
        benchmark(fn)

    return run
