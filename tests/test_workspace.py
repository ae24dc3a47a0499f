"""The kernels' workspace cache: reused between calls, bounded, releasable, thread-safe."""

import numpy as np

import fastconv
from fastconv import _kernels as K
from fastconv import reference
from conftest import run_in_threads


def _layer(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 32, 14, 14)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((4, 32, 14, 14)).astype(np.float32)
    return x, w, dy


def test_workspace_is_kept_reused_and_released():
    x, w, dy = _layer()
    fastconv.release_workspace()
    assert K.workspace_cached() == 0
    first = fastconv.conv2d_backward(dy, x, w, padding=1, algo="winograd")
    kept = K.workspace_cached()
    assert kept > 0
    assert fastconv.config()["workspace_cached_bytes"] == kept
    fastconv.conv2d_backward(dy, x, w, padding=1, algo="winograd")
    kept = K.workspace_cached()
    again = fastconv.conv2d_backward(dy, x, w, padding=1, algo="winograd")
    assert K.workspace_cached() == kept             # steady state: the same blocks come back
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert fastconv.release_workspace() == kept
    assert K.workspace_cached() == 0
    assert fastconv.release_workspace() == 0


def test_workspace_cache_is_bounded():
    x, w, dy = _layer()
    fastconv.release_workspace()
    for algo in ("winograd", "gemm", "direct"):
        for n in (1, 4, 8):
            fastconv.conv2d_backward(dy[:n], x[:n], w, padding=1, algo=algo)
            fastconv.conv2d(x[:n], w, padding=1, algo=algo)
    # at most four blocks, each no larger than one call's workspace of these layers
    assert K.workspace_cached() <= 4 * 64 * 2**20
    fastconv.release_workspace()


def test_workspace_cache_under_concurrent_calls(threads):
    """Python threads (the GIL is released) never share a block: every result stays right."""
    fastconv.set_num_threads(1)
    layers = [_layer(s) for s in range(4)]
    want = [reference.conv2d_backward(dy, x, w, padding=1) for x, w, dy in layers]
    def work(i):
        x, w, dy = layers[i]
        for algo in ("winograd", "gemm", "direct") * 3:
            got = fastconv.conv2d_backward(dy, x, w, padding=1, algo=algo)
            for g, r in zip(got, want[i]):
                np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-3)
            if i == 0:
                fastconv.release_workspace()   # racing with the others' calls

    run_in_threads(work, 4)
