"""The compiled plan's "pointwise" convs (1x1, stride 1, no padding, groups 1; csrc/conv_pw.c,
fastconv/inference/pointwise.py): the kernel reads the input as it lies, its weights packed
once, the epilogue fused, an image's pixels split over the threads. The C test
csrc/tests/test_conv_pw_c.c checks the kernel itself on random sizes and pixel ranges.

Odd sizes (output channels not a multiple of the 8-channel panel, planes not a multiple
of the pixel tile or of a vector, one input channel), every epilogue step (bias, affine,
residual add, relu, leaky relu, clip, sigmoid, tanh), float32 and float64, batch 1 and 3,
1 and 2 threads, every SIMD level the CPU has: compared with the same plan run with its
convs as algo "gemm" and with fastconv.reference (integer-valued data: the sums are
exact, only the unfolded BatchNorm's affine and sigmoid / tanh round).
"""

import numpy as np
import pytest

import fastconv
from fastconv import _kernels as K
from fastconv import nn
from fastconv.inference import plan as plan_mod
from fastconv.inference.pointwise import pw_ok, pw_pays
from conftest import DTYPES, gemm_isas, reference_forward


class _G:
    def __init__(self, C, K, H, k=1, stride=1, pad=0, groups=1):
        self.N, self.C, self.K, self.R, self.S, self.groups = 1, C, K, k, k, groups
        self.stride, self.dilation = (stride, stride), (1, 1)
        self.pad_top = self.pad_bottom = self.pad_left = self.pad_right = pad
        self.P = self.Q = (H + 2 * pad - k) // stride + 1


def _int_conv(cin, cout, dt, rng, bias=True):
    c = nn.Conv2D(cin, cout, 1, bias=bias, dtype=dt, seed=0)
    c.weight.data[...] = rng.integers(-3, 4, c.weight.shape).astype(dt)
    if bias:
        c.bias.data[...] = rng.integers(-4, 5, c.bias.shape).astype(dt)
    return c


def _net(dt, rng, cin, act):
    """Pointwise convs with every epilogue step: bias + act, residual add + relu, an
    unfolded BatchNorm's affine (after a ReLU the fold cannot take), no bias."""
    a = _int_conv(cin, 13, dt, rng)
    body = nn.Sequential(_int_conv(13, 5, dt, rng), nn.ReLU(dtype=dt), _int_conv(5, 13, dt, rng))
    bn = nn.BatchNorm2D(13, dtype=dt)
    bn.running_mean[...] = rng.integers(-2, 3, 13)
    bn.running_var[...] = 3.0
    bn.weight.data[...] = 0.5
    bn.bias.data[...] = 0.25
    return nn.Sequential(a, act, nn.Residual(body), nn.ReLU(dtype=dt), bn,
                         _int_conv(13, 9, dt, rng, bias=False), nn.LeakyReLU(0.125, dtype=dt),
                         _int_conv(9, 17, dt, rng))


ACTS = {"clip": lambda dt: nn.ReLU6(dtype=dt), "relu": lambda dt: nn.ReLU(dtype=dt),
        "sigmoid": lambda dt: nn.Sigmoid(dtype=dt), "tanh": lambda dt: nn.Tanh(dtype=dt)}


def _plans(model, x, algo):
    plan = fastconv.compile(model)
    c = plan.compiled_for(x)
    convs = [n.output for n in plan.fused.nodes if n.op == "conv"]
    return plan_mod._Compiled(plan, c.shapes, c.geoms, {v: algo for v in convs})


@pytest.fixture
def restore(isa_restore, threads):
    """The SIMD level and the thread count put back after the test."""
    yield


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (7, 7), (9, 13), (20, 17)])
@pytest.mark.parametrize("cin", [1, 6])
@pytest.mark.parametrize("act", sorted(ACTS))
def test_pointwise_matches_gemm_and_reference(dt, batch, hw, cin, act, restore):
    rng = np.random.default_rng(hash((batch, hw, cin, act)) % 2**32)
    model = _net(dt, rng, cin, ACTS[act](dt))
    x = rng.integers(-3, 4, (batch, cin) + hw).astype(dt)
    want = reference_forward(model, x)
    gemm = _plans(model, x, "gemm")
    y_gemm = gemm.run(x)
    for isa in gemm_isas():
        K.set_isa(isa)
        for nth in (1, 2):
            fastconv.set_num_threads(nth)
            pw = _plans(model, x, "pointwise")
            assert sum("[pointwise]" in s for s in pw.names) == 5, pw.names
            y = pw.run(x)
            # the unfolded affine rounds, then the last conv's sum may cancel
            tol = (2e-6 if dt == np.float32 else 1e-14) * (1 + np.abs(want).max())
            np.testing.assert_allclose(y, want, rtol=0, atol=tol, err_msg=f"{isa} {nth}")
            np.testing.assert_allclose(y, y_gemm, rtol=0, atol=tol, err_msg=f"{isa} {nth}")


@pytest.mark.parametrize("dt", DTYPES)
def test_pointwise_float_data_close_to_reference(dt, restore):
    """Non-integer data, channel counts past several panels and tiles."""
    rng = np.random.default_rng(5)
    model = nn.Sequential(nn.Conv2D(37, 70, 1, dtype=dt, seed=3), nn.ReLU6(dtype=dt))
    x = rng.standard_normal((2, 37, 19, 23)).astype(dt)
    want = reference_forward(model, x)
    fastconv.set_num_threads(2)
    y = _plans(model, x, "pointwise").run(x)
    tol = 2e-5 if dt == np.float32 else 1e-12
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol)


def test_pointwise_same_bits_at_every_thread_count_and_after_isa_change(restore):
    rng = np.random.default_rng(1)
    model = nn.Sequential(nn.Conv2D(24, 20, 1, dtype=np.float32, seed=1), nn.ReLU6())
    x = rng.standard_normal((1, 24, 31, 29)).astype(np.float32)
    fastconv.set_num_threads(1)
    plan = _plans(model, x, "pointwise")
    y1 = plan.run(x)
    fastconv.set_num_threads(2)
    np.testing.assert_array_equal(plan.run(x), y1)
    for isa in gemm_isas():          # the packing does not depend on the ISA level
        K.set_isa(isa)
        np.testing.assert_allclose(plan.run(x), y1, rtol=1e-5, atol=1e-5)


def test_auto_rule_takes_pointwise(restore):
    fastconv.set_num_threads(2)
    dt = np.float32
    model = nn.Sequential(nn.Conv2D(64, 16, 1, dtype=dt, seed=1), nn.ReLU(dtype=dt),
                          nn.Conv2D(16, 64, 3, padding=1, dtype=dt, seed=2),
                          nn.Conv2D(64, 256, 1, dtype=dt, seed=3))
    x = np.ones((1, 64, 20, 20), dt)
    names = fastconv.compile(model).compiled_for(x).names
    assert "[pointwise]" in names[0] and "[pointwise]" not in names[1] \
        and "[pointwise]" not in names[2], names
    assert pw_pays(_G(64, 16, 20)) and pw_pays(_G(128, 16, 55))  # nth 2 by default
    assert not pw_pays(_G(64, 16, 14))          # too few pixels
    assert not pw_pays(_G(64, 96, 56))          # too many output channels
    assert not pw_pays(_G(64, 16, 20), fused_pool=True)
    assert not pw_pays(_G(64, 16, 20), nth=1)     # whole images per thread: the GEMM conv
    g8 = _G(64, 16, 20)
    g8.N = 8
    assert not pw_pays(g8) and pw_pays(g8, nth=3)
    # whole images per thread: the reducing convs (>= 96 in, <= 64 out), any plane
    for C, Kout, P in [(96, 24, 56), (384, 64, 14), (576, 16, 7)]:
        g = _G(C, Kout, P)
        g.N = 8
        assert pw_pays(g), (C, Kout, P)
        assert not pw_pays(g, nth=1)
    for C, Kout in [(64, 16), (16, 96), (384, 96)]:          # too few in, too many out
        g = _G(C, Kout, 28)
        g.N = 8
        assert not pw_pays(g), (C, Kout)
    for g in (_G(64, 16, 20, k=3), _G(64, 16, 40, stride=2), _G(64, 16, 20, pad=1),
              _G(64, 16, 20, groups=2)):
        assert not pw_ok(g) and not pw_pays(g)


def test_auto_rule_takes_reducing_pointwise_at_whole_image_batches(restore):
    """Batch 2 on 2 threads (whole images per thread): a 1x1 conv from 128 channels down
    to 32 runs pointwise, the expanding one after it stays GEMM, and integer data give
    the reference's output exactly."""
    fastconv.set_num_threads(2)
    dt = np.float32
    model = nn.Sequential(nn.Conv2D(128, 32, 1, dtype=dt, seed=1), nn.ReLU(dtype=dt),
                          nn.Conv2D(32, 96, 1, dtype=dt, seed=2))
    for m in model.modules():
        if isinstance(m, nn.Conv2D):
            m.weight.data[...] = np.random.default_rng(3).integers(-2, 3, m.weight.data.shape)
    x = np.random.default_rng(4).integers(-3, 4, (2, 128, 9, 11)).astype(dt)
    plan = fastconv.compile(model)
    names = plan.compiled_for(x).names
    assert "[pointwise]" in names[0] and "[pointwise]" not in names[1], names
    np.testing.assert_array_equal(plan(x), reference_forward(model, x))


def test_pointwise_program_checks():
    dt = np.float32
    w = np.ones((4, 3, 1, 1), dt)
    pk = K.PwWeights(w)
    assert (pk.K, pk.C, pk.itemsize) == (4, 3, 4) and len(pk.buf) == 8 * 3 * 4
    with pytest.raises(ValueError, match="1, 1"):
        K.PwWeights(np.ones((4, 3, 3, 3), dt))
    conv = (1, 3, 5, 5, 4, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1)
    base = dict(kind="conv", algo="pointwise", N=1, C=4, L=25, conv=conv, x=(0, 0), y=(1, 0),
                w=w, b=None, epi=[])
    K.PlanProgram([dict(base, wpack=pk)], 4, 75, 100, 0)
    with pytest.raises(ValueError, match="packed"):
        K.PlanProgram([dict(base)], 4, 75, 100, 0)
    with pytest.raises(ValueError, match="do not match"):
        K.PlanProgram([dict(base, wpack=K.PwWeights(np.ones((5, 3, 1, 1), dt)))], 4, 75, 100, 0)
    with pytest.raises(ValueError, match="1x1"):
        K.PlanProgram([dict(base, wpack=pk, conv=(1, 3, 5, 5, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
                            L=49)], 4, 75, 196, 0)
