"""fastconv.compile: "gemmt" convs (outputs of few pixels computed as the transposed
product Y^T = cols^T . W^T with the weights packed once when the plan is built;
fastconv/inference/gemmt.py, csrc/conv_gemmt.inc).

Odd shapes (pixels not a multiple of the 14-row tile, channels not a multiple of the
32-wide one), with bias, ReLU, residual add, clip and a fused max pool; compared with
the model run on fastconv.reference, and bitwise with the same plan whose convs run
as algo "gemm" (each output is the same multiply-add chain), at every ISA level the
CPU has, float32 and float64, 1 and 2 threads, batch 1 and 3.
"""

import numpy as np
import pytest

import fastconv
from fastconv import _kernels as K
from fastconv import nn
from fastconv.inference import gemmt as gemmt_mod
from fastconv.inference import plan as plan_mod
from conftest import DTYPES, assert_close, gemm_isas, reference_forward


def _conv(cin, cout, k, dt, seed, stride=1, bias=True):
    return nn.Conv2D(cin, cout, k, stride=stride, padding=k // 2, bias=bias, dtype=dt,
                     seed=seed)


def small_net(dt):
    """7x5 and 4x3 outputs (35 and 12 pixels), 70 / 72 / 100 output channels."""
    body = nn.Sequential(_conv(70, 70, 3, dt, 2), nn.ReLU(dtype=dt),
                         _conv(70, 70, 3, dt, 3, bias=False))
    return nn.Sequential(
        _conv(20, 70, 3, dt, 1), nn.ReLU(dtype=dt),                     # bias + relu
        nn.Residual(body), nn.ReLU(dtype=dt),                           # relu; add + relu
        _conv(70, 72, 1, dt, 4), nn.ReLU6(dtype=dt), nn.MaxPool2D(2, dtype=dt),  # clip + pool
        _conv(72, 100, 3, dt, 5, stride=2, bias=False),                 # no epilogue
        nn.GlobalAvgPool2D(dtype=dt), nn.Linear(100, 3, dtype=dt, seed=6))


def compiled(model, x, force):
    """The plan's schedule for x with every conv the auto policy would run as GEMM
    (forced here, so the shapes need not be the policy's GEMM shapes) turned into
    ``force`` ("gemmt", or "gemm" for the plain path)."""
    plan = fastconv.compile(model)
    c = plan.compiled_for(x)
    convs = [n.output for n in plan.fused.nodes if n.op == "conv"]
    return plan_mod._Compiled(plan, c.shapes, c.geoms, {v: force for v in convs})


@pytest.fixture
def restore(isa_restore, threads):
    """The SIMD level and the thread count put back after the test."""
    yield


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("batch", [1, 3])
def test_gemmt_matches_reference_and_gemm(dt, nthreads, batch, restore):
    fastconv.set_num_threads(nthreads)
    model = small_net(dt)
    x = np.random.default_rng(batch).standard_normal((batch, 20, 7, 5)).astype(dt)
    want = reference_forward(model, x)
    for isa in gemm_isas():
        K.set_isa(isa)
        t, g = compiled(model, x, "gemmt"), compiled(model, x, "gemm")
        names = [n for n, _ in t.profile(x, 1)]
        assert sum("conv[gemmt]" in n for n in names) == 5, names
        got = t.run(x)
        assert_close(got, want, dt, err_msg=isa)
        np.testing.assert_array_equal(got, g.run(x), err_msg=isa)


@pytest.mark.parametrize("dt", DTYPES)
def test_gemmt_thread_count_independent(dt, restore):
    model = small_net(dt)
    x = np.random.default_rng(7).standard_normal((1, 20, 7, 5)).astype(dt)
    outs = []
    for nt in (1, 2, 3):
        fastconv.set_num_threads(nt)
        outs.append(compiled(model, x, "gemmt").run(x))
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_gemmt_after_isa_change_falls_back(restore):
    """Weights packed for one GEMM kernel: run at another ISA level, the ops run as the
    GEMM conv of that level (bitwise its results)."""
    isas = gemm_isas()
    if len(isas) < 2:
        pytest.skip("one ISA level only")
    dt = np.float32
    model = small_net(dt)
    x = np.random.default_rng(3).standard_normal((1, 20, 7, 5)).astype(dt)
    K.set_isa(isas[-1])
    t = compiled(model, x, "gemmt")
    K.set_isa(isas[0])
    g = compiled(model, x, "gemm")
    np.testing.assert_array_equal(t.run(x), g.run(x))
    assert_close(t.run(x), reference_forward(model, x), dt)


@pytest.mark.parametrize("dt", DTYPES)
def test_auto_rule_takes_gemmt(dt, restore, monkeypatch):
    """With the policy's choice GEMM, the auto rule turns the small-output convs with
    enough channels into gemmt and leaves the others (too few channels, too many
    pixels, grouped) on GEMM."""
    fastconv.set_num_threads(2)
    monkeypatch.setattr(plan_mod, "_auto_conv_algo", lambda p, dtype: "gemm")
    model = nn.Sequential(
        _conv(160, 128, 1, dt, 1), nn.ReLU(dtype=dt),                    # 49 px: gemmt
        _conv(128, 40, 3, dt, 2),                                        # 40 channels: gemm
        nn.Conv2D(40, 80, 3, padding=1, groups=2, dtype=dt, seed=3),     # grouped: gemm
        _conv(80, 64, 3, dt, 4), nn.ReLU(dtype=dt))                      # 49 px: gemmt
    x = np.random.default_rng(0).standard_normal((1, 160, 7, 7)).astype(dt)
    plan = fastconv.compile(model)
    names = [n for n, _ in plan.profile(x, 1)]
    assert [n.split()[0] for n in names] == ["conv[gemmt]", "conv[gemm]", "conv[gemm]",
                                             "conv[gemmt]"], names
    assert_close(plan(x), reference_forward(model, x), dt)
    big = np.random.default_rng(0).standard_normal((1, 160, 15, 15)).astype(dt)  # 225 px
    assert all("gemmt" not in n for n, _ in plan.profile(big, 1))


def test_gemmt_pays_rule():
    class G:
        def __init__(self, C, K, R, P, groups=1, N=1):
            self.C, self.K, self.R, self.S, self.P, self.Q, self.groups = C, K, R, R, P, P, groups
            self.N = N

    def pays(g, nth=2, nr=32):
        return gemmt_mod.gemmt_pays(g, nr, min(g.K, plan_mod._conv_kalign(g, nth)), nth)

    assert pays(G(512, 512, 3, 7)) and pays(G(512, 512, 3, 7), nth=1)
    assert pays(G(256, 256, 3, 14))
    assert pays(G(960, 320, 1, 7)) and pays(G(160, 960, 1, 7))
    assert pays(G(960, 160, 1, 7), nth=1)
    assert not pays(G(960, 160, 1, 7))                       # 5 panels on 2 threads
    assert not pays(G(960, 160, 1, 7, N=3))                  # 3 images: still shared out
    assert pays(G(960, 160, 1, 7, N=8))                      # whole images per thread
    assert pays(G(960, 160, 1, 7), nr=16)                    # 10 of 16
    assert not pays(G(64, 256, 1, 13))                       # shallow at 169 pixels
    assert not pays(G(512, 1000, 1, 13))
    assert not pays(G(256, 256, 3, 28))                      # too many pixels
    assert not pays(G(512, 32, 3, 7))                        # too few output channels
    assert not pays(G(512, 512, 3, 7, groups=2))


def test_gemmt_program_checks(restore):
    """The op array refuses a gemmt conv without its packed weights or with weights
    packed for another shape / dtype."""
    dt = np.float32
    model = nn.Sequential(_conv(16, 64, 3, dt, 1))
    x = np.zeros((1, 16, 5, 5), dt)
    c = compiled(model, x, "gemmt")
    op = dict(c.ops[0])
    K.PlanProgram([op], 4, x.size, 64 * 25, c.arena_size)
    bad = [dict(op, wpack=None),
           dict(op, wpack=K.GemmtWeights(np.zeros((64, 16, 1, 1), dt))),
           dict(op, wpack=K.GemmtWeights(np.zeros((32, 16, 3, 3), dt)))]
    for d in bad:
        with pytest.raises(ValueError, match="pack"):
            K.PlanProgram([d], 4, x.size, 64 * 25, c.arena_size)
    with pytest.raises(ValueError, match="itemsize 8"):
        K.PlanProgram([dict(op, wpack=K.GemmtWeights(np.zeros((64, 16, 3, 3))))], 4,
                      x.size, 64 * 25, c.arena_size)
    with pytest.raises(ValueError, match="solo"):
        K.PlanProgram([dict(op, solo=True)], 4, x.size, 64 * 25, c.arena_size)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.GemmtWeights(np.zeros((64, 16, 3, 3), dt)[:, :, ::-1])


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("batch", [1, 3])
def test_gemmt_cut_by_pixels(dt, batch, restore):
    """A 1x1 conv whose output channels do not split into equal whole panels over two
    threads (144 = 5 panels of 32, 9 of 16) at a batch cut into shares runs as gemmt with its
    images cut by output pixels (pxsplit): the bits of the plain GEMM plan, with bias,
    a residual add and ReLU applied to each pixel part, at every ISA level."""
    fastconv.set_num_threads(2)
    body = nn.Sequential(_conv(144, 960, 1, dt, 1), nn.ReLU6(dtype=dt),
                         _conv(960, 144, 1, dt, 2))
    model = nn.Sequential(nn.Residual(body), nn.ReLU(dtype=dt), _conv(144, 144, 1, dt, 3))
    x = np.random.default_rng(batch).standard_normal((batch, 144, 7, 7)).astype(dt)
    plan = fastconv.compile(model)
    ops = plan.compiled_for(x).ops
    split = [o for o in ops if o.get("pxsplit")]
    assert len(split) == 2 and all(o["algo"] == "gemmt" for o in split), \
        [(o.get("algo"), o.get("pxsplit")) for o in ops]
    want = reference_forward(model, x)
    for isa in gemm_isas():
        K.set_isa(isa)
        got = fastconv.compile(model)(x)
        assert_close(got, want, dt)
        np.testing.assert_array_equal(got, compiled(model, x, "gemm").run(x))
    fastconv.set_num_threads(1)                   # one thread: nothing to cut
    assert not any(o.get("pxsplit") for o in fastconv.compile(model).compiled_for(x).ops)


def test_gemmt_pxsplit_rule():
    class G:
        def __init__(self, C, K, P, N=1, R=1, stride=1, pad=0):
            self.C, self.K, self.R, self.S, self.P, self.Q, self.N = C, K, R, R, P, P, N
            self.groups, self.stride, self.dilation = 1, (stride, stride), (1, 1)
            self.pad_top = self.pad_bottom = self.pad_left = self.pad_right = pad

    def pays(g, nth=2, nr=32, pool=False):
        share = min(g.K, plan_mod._conv_kalign(g, nth))
        return gemmt_mod.gemmt_pxsplit_pays(g, nr, share, nth, pool)

    assert pays(G(960, 160, 7)) and pays(G(576, 160, 7, N=3))
    assert not pays(G(960, 320, 7))               # even panels: gemmt_pays takes it
    assert not pays(G(960, 160, 7, N=2))          # whole images per thread
    assert not pays(G(960, 160, 7), nth=1)
    assert not pays(G(960, 160, 7), pool=True)
    assert not pays(G(960, 160, 7, R=3, pad=1))   # a slab per part: not cut
    assert not pays(G(960, 160, 7, stride=2))
    assert not pays(G(64, 160, 7))                # too shallow
    assert not pays(G(960, 160, 28))              # too many pixels


def test_pxsplit_program_check(restore):
    dt = np.float32
    model = nn.Sequential(_conv(16, 64, 3, dt, 1))
    x = np.zeros((1, 16, 5, 5), dt)
    op = dict(compiled(model, x, "gemm").ops[0])
    with pytest.raises(ValueError, match="pxsplit"):
        K.PlanProgram([dict(op, pxsplit=True)], 4, x.size, 64 * 25,
                      compiled(model, x, "gemm").arena_size)
