"""The compiled plan's rule that runs small convs as "direct" instead of "gemm" when their
images are cut into channel shares (fastconv/inference/plan.py, _direct_pays): which
convs it takes and leaves, and that the plan still computes the model."""

import numpy as np
import pytest

import fastconv
from fastconv import nn
from fastconv.inference import plan as plan_mod
from conftest import DTYPES, assert_close, reference_forward


def _algos(plan, x):
    return [n.split()[0] for n, _ in plan.profile(x, 1)]


def _net(dt):
    return nn.Sequential(
        nn.Conv2D(16, 32, 3, padding=1, dtype=dt, seed=1), nn.ReLU(dtype=dt),    # direct
        nn.Conv2D(32, 64, 3, padding=1, dtype=dt, seed=2), nn.ReLU(dtype=dt),    # direct
        nn.MaxPool2D(2, dtype=dt),
        nn.Conv2D(64, 64, 1, dtype=dt, seed=3),                                  # 1x1: gemm
        nn.Conv2D(64, 96, 3, padding=1, dtype=dt, seed=4), nn.ReLU(dtype=dt),    # 96: gemm
        nn.Conv2D(96, 48, 3, padding=1, dtype=dt, seed=5))                       # 96 in: gemm


@pytest.mark.parametrize("dt", DTYPES)
def test_small_convs_of_a_split_image_run_direct(dt, threads, monkeypatch):
    fastconv.set_num_threads(2)
    monkeypatch.setattr(plan_mod, "_auto_conv_algo", lambda p, dtype: "gemm")
    model = _net(dt)
    plan = fastconv.compile(model)
    x = np.random.default_rng(0).standard_normal((1, 16, 20, 20)).astype(dt)
    assert _algos(plan, x) == ["conv[direct]", "conv[direct]", "conv[gemm]", "conv[gemm]",
                               "conv[gemm]"]
    assert_close(plan(x), reference_forward(model, x), dt)
    # batch 3 on 2 threads: images still cut into channel shares; the 32 -> 64 conv now
    # has 3 x 25 output tiles of 4x4, enough to run solo as Winograd (that rule first)
    x3 = np.random.default_rng(1).standard_normal((3, 16, 20, 20)).astype(dt)
    assert _algos(plan, x3)[:2] == ["conv[direct]", "conv[winograd]"]
    assert_close(plan(x3), reference_forward(model, x3), dt)


def test_whole_images_one_thread_and_large_planes_stay_gemm(threads, monkeypatch):
    monkeypatch.setattr(plan_mod, "_auto_conv_algo", lambda p, dtype: "gemm")
    model = _net(np.float32)
    plan = fastconv.compile(model)
    fastconv.set_num_threads(2)
    x2 = np.random.default_rng(0).standard_normal((2, 16, 20, 20)).astype(np.float32)
    assert "conv[direct]" not in _algos(plan, x2)          # whole images per thread
    big = np.random.default_rng(0).standard_normal((1, 16, 40, 40)).astype(np.float32)
    assert _algos(plan, big)[0] == "conv[gemm]"             # 1600 output pixels
    fastconv.set_num_threads(1)
    plan1 = fastconv.compile(model)
    x1 = np.random.default_rng(0).standard_normal((1, 16, 20, 20)).astype(np.float32)
    assert "conv[direct]" not in _algos(plan1, x1)          # one thread: nothing is split
    assert_close(plan1(x1), reference_forward(model, x1), np.float32)


def test_rule_bounds(threads):
    class G:
        def __init__(self, C, K, R, P, N=1, groups=1):
            self.C, self.K, self.R, self.S, self.P, self.Q = C, K, R, R, P, P
            self.N, self.groups = N, groups

    fastconv.set_num_threads(2)
    assert plan_mod._direct_pays(G(32, 32, 3, 32))
    assert plan_mod._direct_pays(G(20, 50, 5, 8))
    assert not plan_mod._direct_pays(G(32, 32, 3, 33))        # 1089 pixels
    assert not plan_mod._direct_pays(G(65, 32, 3, 8))         # 65 input channels
    assert not plan_mod._direct_pays(G(32, 65, 3, 8))         # 65 output channels
    assert not plan_mod._direct_pays(G(32, 32, 1, 8))         # 1x1
    assert not plan_mod._direct_pays(G(32, 32, 3, 8, N=2))    # the batch divides
    assert not plan_mod._direct_pays(G(32, 32, 3, 8, groups=2))
    fastconv.set_num_threads(1)
    assert not plan_mod._direct_pays(G(32, 32, 3, 8))         # one thread
