"""fastconv.compile: "solo" Winograd convs (with more than one thread, at every batch:
the conv runs by its own kernel with all the threads between two shared regions,
then its epilogue and fused pool in the next region; at a batch that does not
divide over the threads Winograd is taken where it pays solo).

Compared with model.eval().forward at the tolerance of test_compile (relative to
the largest magnitude): 1e-5 in float32, 1e-10 in float64.
"""

import copy

import numpy as np
import pytest

import fastconv
from fastconv import _kernels as K
from fastconv import nn
from fastconv.inference import plan as plan_mod
from conftest import DTYPES, run_in_threads

RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}
C = plan_mod.SOLO_MIN_CHANNELS
# a 3x3 stride-1 conv on HW x HW has (HW / 4)^2 output tiles of 4x4: enough to run solo
HW = 4 * int(np.ceil(np.sqrt(plan_mod.SOLO_MIN_TILES)))


def conv(cin, cout, dt, seed, bias=True):
    return nn.Conv2D(cin, cout, 3, padding=1, bias=bias, dtype=dt, seed=seed)


def bn(c, dt, rng):
    m = nn.BatchNorm2D(c, dtype=dt)
    m.running_mean[...] = rng.standard_normal(c) * 0.5
    m.running_var[...] = rng.uniform(0.5, 2.0, c)
    m.weight.data[...] = rng.uniform(0.5, 1.5, c)
    m.bias.data[...] = rng.standard_normal(c) * 0.3
    return m


def solo_net(dt, seed=0):
    """Winograd-sized convs with a ReLU, a residual add + ReLU, a clip (ReLU6) with a
    fused max pool, a plain conv with a fused average pool, then a head."""
    rng = np.random.default_rng(seed)
    body = nn.Sequential(conv(C, C, dt, 2), bn(C, dt, rng), nn.ReLU(dtype=dt),
                         conv(C, C, dt, 3, bias=False), bn(C, dt, rng))
    return nn.Sequential(
        conv(3, C, dt, 1), nn.ReLU(dtype=dt),                      # 3 channels: never solo
        nn.Residual(body), nn.ReLU(dtype=dt),                      # relu; add + relu
        conv(C, C, dt, 4), nn.ReLU6(dtype=dt), nn.MaxPool2D(2, dtype=dt),   # clip + maxpool
        conv(C, C, dt, 5), nn.AvgPool2D(3, stride=1, padding=1, dtype=dt),  # bias + avgpool
        nn.GlobalAvgPool2D(dtype=dt), nn.Linear(C, 5, dtype=dt, seed=6))


def check(plan, model, x, err=""):
    want = copy.deepcopy(model).eval().forward(x)
    got = plan(x)
    assert got.shape == want.shape and got.dtype == want.dtype, err
    mag = max(float(np.max(np.abs(want))), 1e-30)
    np.testing.assert_allclose(got, want, rtol=0, atol=RTOL[np.dtype(x.dtype)] * mag,
                               err_msg=err)
    return got


def solo_ops(plan, x):
    return [d for d in plan.compiled_for(x).ops if d.get("solo")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("batch", [1, 3])
def test_solo_matches_forward(threads, dtype, nthreads, batch):
    fastconv.set_num_threads(nthreads)
    model = solo_net(dtype)
    plan = fastconv.compile(model)
    x = np.random.default_rng(batch).standard_normal((batch, 3, HW, HW)).astype(dtype)
    check(plan, model, x, f"batch {batch}, {nthreads} threads")
    solo = solo_ops(plan, x)
    if nthreads == 1:
        assert not solo          # every batch divides over one thread
        return
    # the residual body's two convs, the clip + maxpool conv (before its pool the image is
    # HW x HW) and the avgpool one on HW/2 x HW/2 (too few tiles there)
    assert len(solo) == 3 and all(d["algo"] == "winograd" for d in solo)
    assert [d.get("fused_pool") for d in solo] == [None, None, "maxpool"]
    assert [e[0] for e in solo[1]["epi"]] == ["add", "relu"]
    assert [e[0] for e in solo[2]["epi"]] == ["clip"]


def test_small_convs_do_not_run_solo(threads):
    fastconv.set_num_threads(2)
    dt = np.float32
    model = nn.Sequential(conv(3, 16, dt, 1), nn.ReLU(dtype=dt), conv(16, 16, dt, 2))
    plan = fastconv.compile(model)
    x = np.random.default_rng(0).standard_normal((1, 3, HW, HW)).astype(dt)
    check(plan, model, x)
    assert not solo_ops(plan, x)


@pytest.mark.parametrize("cin, solo", [(16, True), (8, False)])
def test_solo_needs_few_input_channels(threads, cin, solo):
    """An expanding conv (SqueezeNet's 16 -> 64 at 55x55) runs solo from 16 input
    channels on (SOLO_MIN_IN), given SOLO_MIN_CHANNELS outputs; with 8 it stays in the
    shared region. The result matches forward either way."""
    fastconv.set_num_threads(2)
    dt = np.float32
    model = nn.Sequential(conv(3, cin, dt, 1), nn.ReLU(dtype=dt), conv(cin, C, dt, 2),
                          nn.ReLU(dtype=dt))
    plan = fastconv.compile(model)
    x = np.random.default_rng(5).standard_normal((1, 3, HW, HW)).astype(dt)
    check(plan, model, x)
    ops = solo_ops(plan, x)
    assert [(d["algo"], d["conv"][1]) for d in ops] == ([("winograd", cin)] if solo else [])


@pytest.mark.parametrize("nthreads", [1, 2])
def test_solo_even_batch(threads, nthreads):
    """At a batch that divides over the threads the policy's Winograd convs run solo too
    (shared, every claim of whole images would transform the filters again): the same
    three convs as at batch 3 here (batch 4), none at one thread, and only Winograd ever
    runs solo (at batch 2 the policy takes the direct conv: nothing solo)."""
    fastconv.set_num_threads(nthreads)
    model = solo_net(np.float32)
    plan = fastconv.compile(model)
    x = np.random.default_rng(4).standard_normal((4, 3, HW, HW)).astype(np.float32)
    check(plan, model, x)
    solo = solo_ops(plan, x)
    if nthreads == 1:
        assert not solo
    else:
        assert len(solo) == 3 and all(d["algo"] == "winograd" for d in solo)
        assert [d.get("fused_pool") for d in solo] == [None, None, "maxpool"]
    x2 = x[:2].copy()
    check(plan, model, x2)
    convs = [d for d in plan.compiled_for(x2).ops if d["kind"] == "conv"]
    assert all((d["algo"] == "winograd") == bool(d.get("solo")) for d in convs) or nthreads == 1
    assert not any(d.get("solo") for d in convs if d["algo"] != "winograd")


def test_solo_plan_from_two_python_threads(threads):
    fastconv.set_num_threads(2)
    model = solo_net(np.float32, seed=1)
    plan = fastconv.compile(model)
    rng = np.random.default_rng(9)
    xs = [rng.standard_normal((b, 3, HW, HW)).astype(np.float32) for b in (1, 3)]
    assert all(solo_ops(plan, x) for x in xs)
    want = [plan(x) for x in xs]           # the same op arrays, run alone

    def work(i):
        for r in range(15):
            j = (i + r) % len(xs)
            np.testing.assert_array_equal(plan(xs[j]), want[j])

    run_in_threads(work, n=2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_solo_profile_and_tune(threads, dtype):
    fastconv.set_num_threads(2)
    model = solo_net(dtype, seed=2)
    x = np.random.default_rng(5).standard_normal((1, 3, HW, HW)).astype(dtype)
    plan = fastconv.compile(model)
    prof = plan.profile(x, repeat=3)
    assert len(prof) == len(plan.compiled_for(x).ops)
    assert all(t >= 0 for _, t in prof) and sum(t for _, t in prof) > 0
    # tune=True times Winograd as it would run (solo) against direct and gemm
    check(fastconv.compile(model, tune=True), model, x)


def test_only_a_conv_runs_solo():
    w = np.zeros((3, 4), np.float32)
    op = dict(kind="linear", algo="gemv", N=1, C=3, L=1, in_features=4, x=(0, 0), y=(1, 0),
              w=w, b=None)
    K.PlanProgram([op], 4, 4, 3, 0)
    with pytest.raises(ValueError, match="solo"):
        K.PlanProgram([dict(op, solo=True)], 4, 4, 3, 0)


@pytest.mark.parametrize("nthreads", [2, 3])
@pytest.mark.parametrize("K", [7, 13, 50])
def test_channel_shares_one_per_thread(threads, nthreads, K):
    """Batch-1 / odd-batch convs are cut into one share of output channels per thread
    (blocks of _kalign's alignment): odd channel counts, with a fused pool."""
    fastconv.set_num_threads(nthreads)
    dt = np.float64
    model = nn.Sequential(nn.Conv2D(3, K, 5, dtype=dt, seed=1), nn.MaxPool2D(2, dtype=dt),
                          nn.ReLU(dtype=dt), nn.Conv2D(K, K + 3, 3, padding=1, dtype=dt, seed=2),
                          nn.ReLU6(dtype=dt))
    plan = fastconv.compile(model)
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 14, 14)).astype(dt)
        check(plan, model, x, f"batch {batch}")
        convs = [d for d in plan.compiled_for(x).ops if d["kind"] == "conv"]
        assert len(convs) == 2
        assert all(-(-d["C"] // d["kalign"]) <= nthreads for d in convs)
