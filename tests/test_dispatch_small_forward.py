"""The policy's rule for the forward pass of a small batch through a small conv
(fastconv/_dispatch.py, _small_forward): direct instead of GEMM at batch 1 and 2, for
which geometries and passes, and the result's independence of the thread count."""

import numpy as np
import pytest

import fastconv
from fastconv import _dispatch
from fastconv import reference as ref
from fastconv._args.geometry import conv_params


def _algo(x_shape, w_shape, padding, backward=False):
    return _dispatch.choose_algo("auto", conv_params(x_shape, w_shape, 1, padding),
                                 backward, np.float32)


@pytest.mark.parametrize("n", [1, 2])
def test_small_convs_at_small_batches_run_direct(n):
    assert _algo((n, 32, 32, 32), (32, 32, 3, 3), 1) == "direct"     # vgg_small's second conv
    assert _algo((n, 32, 16, 16), (64, 32, 3, 3), 1) == "direct"
    assert _algo((n, 20, 12, 12), (50, 20, 5, 5), 0) == "direct"     # LeNet-5's second conv


def test_the_rule_leaves_the_rest_alone():
    assert _algo((3, 32, 32, 32), (32, 32, 3, 3), 1) != "direct"     # three images
    assert _algo((64, 20, 12, 12), (50, 20, 5, 5), 0) == "gemm"      # a training batch
    assert _algo((1, 16, 20, 20), (32, 16, 3, 3), 1) == "gemm"       # 512 channel pairs
    assert _algo((1, 32, 40, 40), (32, 32, 3, 3), 1) != "direct"     # 1,600 output pixels
    assert _algo((1, 96, 16, 16), (96, 96, 3, 3), 1) != "direct"     # 96 channels
    assert _algo((1, 64, 16, 16), (64, 64, 1, 1), 0) == "gemm"       # a 1x1 kernel
    for backward in ("data", "weight"):
        assert _algo((1, 32, 32, 32), (32, 32, 3, 3), 1, backward) != "direct"


def test_small_forward_is_exact_and_the_same_on_every_thread_count(threads):
    """Integer-valued inputs make every sum exact: the direct result equals the
    reference bitwise, at 1 and 2 threads alike."""
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, (1, 32, 16, 16)).astype(np.float32)
    w = rng.integers(-3, 4, (64, 32, 3, 3)).astype(np.float32)
    b = rng.integers(-3, 4, 64).astype(np.float32)
    want = ref.conv2d(x, w, b, padding=1)
    got = {}
    for nt in (1, 2):
        fastconv.set_num_threads(nt)
        got[nt] = fastconv.conv2d(x, w, b, padding=1)
        np.testing.assert_array_equal(got[nt], want)
    assert got[1].tobytes() == got[2].tobytes()
