"""Thread safety, fork safety, determinism and threadpoolctl interplay."""

import os
import sys
import textwrap

import numpy as np
import pytest

import fastconv
from conftest import run_in_threads, run_python


def _work(x, w):
    y = fastconv.conv2d(x, w, padding=1)
    dx, dw, db = fastconv.conv2d_backward(y, x, w, padding=1)
    p, idx = fastconv.max_pool2d(y, 2, return_indices=True)
    a = fastconv.avg_pool2d(y, 3, 2, 1)
    return [y, dx, dw, db, p, idx, a, fastconv.max_pool2d_backward(p, idx, y.shape)]


def test_python_threads_share_read_only_inputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8, 20, 20)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    x.flags.writeable = False
    w.flags.writeable = False
    want = _work(x, w)
    results = [None] * 4

    def run(i):
        for _ in range(3):
            results[i] = _work(x, w)

    run_in_threads(run, 4)
    for r in results:
        for a, b in zip(r, want):
            np.testing.assert_array_equal(a, b)


def test_bitwise_deterministic_across_runs_and_thread_counts(threads):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 17, 15)).astype(np.float32)
    w = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    outs = []
    for n in (1, 2, 1, 2):
        fastconv.set_num_threads(n)
        for algo in ("im2col", "direct"):
            y = fastconv.conv2d(x, w, padding=1, groups=2, algo=algo)
            outs.append((algo, [y, *fastconv.conv2d_backward(y, x, w, padding=1, groups=2,
                                                             algo=algo)]))
    for algo in ("im2col", "direct"):
        runs = [o for a, o in outs if a == algo]
        for r in runs[1:]:
            for a, b in zip(r, runs[0]):
                assert a.tobytes() == b.tobytes()


_FORK_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    import fastconv
    fastconv.set_num_threads(2)
    x = np.random.default_rng(0).standard_normal((4, 8, 32, 32)).astype(np.float32)
    w = np.ones((8, 8, 3, 3), np.float32)
    want = fastconv.conv2d(x, w, padding=1, algo="direct")   # the parent's OpenMP pool now exists
    pid = os.fork()
    if pid == 0:
        ok = np.array_equal(fastconv.conv2d(x, w, padding=1, algo="direct"), want)
        p = fastconv.max_pool2d(x, 2)
        os._exit(0 if ok and p.shape == (4, 8, 16, 16) else 3)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_kernels_work_in_a_forked_child():
    r = run_python(["-c", _FORK_SCRIPT], timeout=120)
    assert r.returncode == 0, r.stderr


def test_set_num_threads_validates_and_returns_previous(threads):
    fastconv.set_num_threads(1)
    assert fastconv.set_num_threads(2) == 1
    expected = 2 if fastconv.openmp_enabled() else 1
    assert fastconv.get_num_threads() == expected
    with pytest.raises(ValueError, match="positive"):
        fastconv.set_num_threads(0)
    with pytest.raises(TypeError, match="int"):
        fastconv.set_num_threads(1.5)


@pytest.mark.skipif(not fastconv.openmp_enabled(), reason="built without OpenMP")
def test_small_convolutions_and_pools_run_on_one_thread(threads, monkeypatch):
    """Waking the OpenMP threads costs more than a small pass saves: a convolution
    below MIN_PARALLEL_CONV_WORK multiply-adds, or a pooling forward below
    MIN_PARALLEL_POOL_WORK window reads, asks its kernel for one thread; larger ones
    for all of them."""
    from fastconv import _runtime, functional
    fastconv.set_num_threads(2)
    conv = _runtime.MIN_PARALLEL_CONV_WORK
    pool = _runtime.MIN_PARALLEL_POOL_WORK
    assert _runtime.conv_threads(conv - 1) == 1 and _runtime.conv_threads(conv) == 2
    assert _runtime.pool_threads(pool - 1) == 1 and _runtime.pool_threads(pool) == 2
    assert _runtime.kernel_threads(_runtime.MIN_PARALLEL_WORK) == 2
    seen = []
    real = functional.run_pass
    monkeypatch.setattr(functional, "run_pass",
                        lambda *a, **k: (seen.append(a[6]), real(*a, **k))[1])
    rng = np.random.default_rng(0)
    w = rng.standard_normal((32, 3, 3, 3)).astype(np.float32)
    small = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)      # 0.9 M multiply-adds
    large = rng.standard_normal((16, 3, 32, 32)).astype(np.float32)     # 14 M
    y_small = fastconv.conv2d(small, w, padding=1)
    fastconv.conv2d(large, w, padding=1)
    assert seen == [1, 2]
    fastconv.set_num_threads(1)
    np.testing.assert_array_equal(fastconv.conv2d(small, w, padding=1), y_small)


def test_threadpoolctl_sees_and_limits_blas():
    """threadpoolctl finds the BLAS that the im2col path calls (NumPy's), reports its
    thread count, and threadpool_limits really changes that count inside the context
    (and puts it back after); the results are the same either way."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 9, 9))
    w = rng.standard_normal((4, 4, 3, 3))
    want = fastconv.conv2d(x, w, algo="im2col")        # loads and runs the BLAS

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    assert before, f"threadpoolctl sees no BLAS: {threadpoolctl.threadpool_info()}"
    assert all(n >= 1 for n in before)
    target = 2 if before == [1] * len(before) else 1    # a limit that changes something
    with threadpoolctl.threadpool_limits(target, user_api="blas"):
        assert blas_threads() == [target] * len(before)
        np.testing.assert_array_equal(fastconv.conv2d(x, w, algo="im2col"), want)
    assert blas_threads() == before
