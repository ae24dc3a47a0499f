"""The depthwise kernel (csrc/conv_dw.c): fastconv.conv2d's direct algorithm on a
depthwise geometry (groups == C == K, dilation 1, strides 1 or 2; the direct loops take
the others) and the compiled plan's "depthwise" convs (the same geometries) with their
epilogue fused. The C test
csrc/tests/test_conv_dw_c.c checks the kernel itself on every geometry it takes.

Integer-valued inputs make every float32 / float64 sum exact, so the kernel is
compared with fastconv.reference bitwise, under every SIMD level this CPU runs and
at 1 and 2 threads (which must give the same bits).
"""

import copy

import numpy as np
import pytest

import fastconv
from fastconv import _kernels as K
from fastconv import nn
from fastconv import reference as ref
from fastconv.inference import compile as fc_compile
from conftest import DTYPES, gemm_isas

# (H, W): narrower than every vector, odd, exactly a vector, MobileNet's planes
PLANES = [(1, 1), (2, 3), (5, 7), (7, 7), (4, 9), (13, 16), (14, 14), (17, 33), (28, 28),
          (9, 40), (6, 65)]
# (kernel, stride, padding)
GEOMS = [(3, 1, 1), (3, 2, 1), (3, 1, 0), (3, 2, 0), (3, 1, 2), (3, 2, 2), (1, 1, 0),
         (1, 2, 0), (5, 1, 2), (5, 2, 2), ((3, 2), (1, 2), (1, 0)), ((2, 5), (2, 1), (0, 2)),
         (4, 2, 1)]


def ints(rng, shape, dtype, lo=-4, hi=5):
    return rng.integers(lo, hi, shape).astype(dtype)


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def _fits(H, W, k, pad):
    (kh, kw), (ph, pw) = _pair(k), _pair(pad)
    return H + 2 * ph >= kh and W + 2 * pw >= kw


@pytest.mark.parametrize("isa", gemm_isas())
@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_exact_every_isa_and_thread_count(isa, dtype, isa_restore, threads):
    K.set_isa(isa)
    rng = np.random.default_rng(7)
    n = 0
    for H, W in PLANES:
        for k, s, p in GEOMS:
            if not _fits(H, W, k, p):
                continue
            C = 3 + (H + W) % 4
            kh, kw = _pair(k)
            x = ints(rng, (2, C, H, W), dtype)
            w = ints(rng, (C, 1, kh, kw), dtype, -3, 4)
            b = ints(rng, (C,), dtype)
            want = ref.conv2d(x, w, b, stride=s, padding=p, groups=C)
            got = {}
            for nt in (1, 2):
                fastconv.set_num_threads(nt)
                got[nt] = fastconv.conv2d(x, w, b, stride=s, padding=p, groups=C, algo="direct")
                np.testing.assert_array_equal(got[nt], want, err_msg=f"{H}x{W} k{k} s{s} p{p}")
            assert got[1].tobytes() == got[2].tobytes()
            # no bias, and the auto choice (direct for depthwise) agrees
            np.testing.assert_array_equal(
                fastconv.conv2d(x, w, None, stride=s, padding=p, groups=C),
                ref.conv2d(x, w, None, stride=s, padding=p, groups=C))
            n += 1
    assert n > 80


@pytest.mark.parametrize("isa", gemm_isas())
@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_data_3x3_stride1_exact_every_isa_and_thread_count(isa, dtype, isa_restore,
                                                                     threads):
    """The direct backward-data of a 3x3 stride-1 depthwise conv runs as the depthwise
    forward of dy with the kernel turned 180 degrees (conv.inc's bwd_data_dw): exact on
    integers for pads 0, 1 and 2, on planes narrower than a vector and wider, the same bits
    at 1 and 2 threads; 5x5 and stride 2 (the direct loops) stay exact too."""
    K.set_isa(isa)
    rng = np.random.default_rng(11)
    for H, W in [(1, 1), (5, 7), (13, 16), (14, 14), (28, 28), (6, 65), (40, 20)]:
        for k, s, pad in [(3, 1, 0), (3, 1, 1), (3, 1, 2), (5, 1, 2), (3, 2, 1)]:
            if not _fits(H, W, k, pad):
                continue
            C = 3 + (H + W) % 4
            x = ints(rng, (2, C, H, W), dtype)
            w = ints(rng, (C, 1, k, k), dtype, -3, 4)
            y = ref.conv2d(x, w, None, stride=s, padding=pad, groups=C)
            dy = ints(rng, y.shape, dtype)
            want = ref.conv2d_backward(dy, x, w, stride=s, padding=pad, groups=C)[0]
            got = {}
            for nt in (1, 2):
                fastconv.set_num_threads(nt)
                got[nt] = fastconv.conv2d_backward(dy, x, w, stride=s, padding=pad, groups=C,
                                                   algo="direct")[0]
                np.testing.assert_array_equal(got[nt], want, err_msg=f"{H}x{W} k{k} s{s} p{pad}")
            assert got[1].tobytes() == got[2].tobytes()


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_backward_data_3x3_stride1_keeps_inf_and_nan_weights_to_their_terms(bad):
    """An inf or NaN weight reaches only the dx elements whose sum has that weight times a
    real dy element, as in the reference: the turned-kernel forward would also multiply
    it by dy's zero padding (inf * 0 = NaN at the borders), so such weights stay on the
    direct loops."""
    C = 3
    x = np.ones((2, C, 6, 7))
    w = np.ones((C, 1, 3, 3))
    w[0, 0, 0, 0] = bad
    w[1, 0, 1, 2] = bad
    dy = np.arange(2 * C * 6 * 7, dtype=np.float64).reshape(2, C, 6, 7) % 5 + 1
    for pad in (1, 2):
        dy_p = dy if pad == 1 else np.pad(dy, ((0, 0), (0, 0), (1, 1), (1, 1))) + 1
        got = fastconv.conv2d_backward(dy_p, x, w, padding=pad, groups=C, algo="direct")[0]
        want = ref.conv2d_backward(dy_p, x, w, padding=pad, groups=C)[0]
        np.testing.assert_array_equal(got, want, err_msg=f"pad {pad}")


@pytest.mark.parametrize("pads", [(0, 2, 1, 0), (2, 0, 0, 2), (1, 2, 2, 1), (0, 1, 2, 2)])
def test_backward_data_3x3_stride1_asymmetric_pads(pads):
    """Pads that differ between the sides (an ONNX graph's) reach the C entry through the
    geometry: exact (the turned kernel's far pads come from P and Q; a geometry whose
    turned form would not give H x W stays on the direct loops)."""
    from fastconv._args.geometry import conv_params
    from fastconv._dispatch import conv_geom
    pt, pb, pl, pr = pads
    rng = np.random.default_rng(2)
    C, H, W = 5, 8, 10
    P, Q = H + pt + pb - 2, W + pl + pr - 2
    p = conv_params((2, C, H, W), (C, 1, 3, 3), 1, 0, 1, C)._replace(
        pad_top=pt, pad_bottom=pb, pad_left=pl, pad_right=pr, P=P, Q=Q)
    w = ints(rng, (C, 1, 3, 3), np.float64, -3, 4)
    dy = ints(rng, (2, C, P, Q), np.float64)
    dx = np.empty((2, C, H, W))
    K.conv2d_bwd_data(K.ALGO_ID["direct"], conv_geom(p), dy.ravel(), w.ravel(), dx.reshape(-1), 2)
    padded = ref.conv2d_backward(dy, np.zeros((2, C, H + pt + pb, W + pl + pr)), w, padding=0,
                                 groups=C)[0]
    np.testing.assert_array_equal(dx, padded[:, :, pt:pt + H, pl:pl + W])


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_random_values_close_to_reference(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 32, 56, 56)).astype(dtype)
    w = rng.standard_normal((32, 1, 3, 3)).astype(dtype)
    b = rng.standard_normal(32).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for s in (1, 2):
        want = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                          stride=s, padding=1, groups=32)
        got = fastconv.conv2d(x, w, b, stride=s, padding=1, groups=32)
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_geometries_outside_the_kernel_fall_back_and_stay_exact(dtype):
    """Dilation 2, stride 3, a channel multiplier and groups < C go to the generic
    direct loops (fc_dw_supported is false) and still match the reference."""
    rng = np.random.default_rng(5)
    x = ints(rng, (2, 6, 11, 10), dtype)
    cases = [dict(w=(6, 1, 3, 3), groups=6, dilation=2, stride=1, padding=2),
             dict(w=(6, 1, 3, 3), groups=6, dilation=1, stride=3, padding=1),
             dict(w=(12, 1, 3, 3), groups=6, dilation=1, stride=1, padding=1),
             dict(w=(6, 2, 3, 3), groups=3, dilation=1, stride=2, padding=1)]
    for c in cases:
        w = ints(rng, c["w"], dtype, -3, 4)
        kw = {k: c[k] for k in ("groups", "dilation", "stride", "padding")}
        np.testing.assert_array_equal(fastconv.conv2d(x, w, None, algo="direct", **kw),
                                      ref.conv2d(x, w, None, **kw), err_msg=str(c))


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 24, 15, 19)).astype(np.float32)
    w = rng.standard_normal((24, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    for s in (1, 2):
        want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                          torch.from_numpy(b), stride=s, padding=1,
                                          groups=24).numpy()
        np.testing.assert_allclose(fastconv.conv2d(x, w, b, stride=s, padding=1, groups=24),
                                   want, rtol=0, atol=1e-5 * np.abs(want).max())


# ---------------------------------------------------------------- the compiled plan


def _dw(C, stride=1, k=3, pad=1, dtype=np.float32, seed=0):
    return nn.Conv2D(C, C, k, stride=stride, padding=pad, groups=C, dtype=dtype, seed=seed)


def _net(dtype):
    """Depthwise convs with every epilogue the plan fuses into them: ReLU6 (clip),
    ReLU, LeakyReLU, a residual add then ReLU (vector steps), Sigmoid and Tanh
    (the plain-C pass), a BatchNorm folded into the weights, no epilogue at all."""
    d = dict(dtype=dtype)
    return nn.Sequential(
        nn.Conv2D(3, 8, 3, padding=1, seed=1, **d), nn.ReLU(**d),
        _dw(8, 1, dtype=dtype, seed=2), nn.BatchNorm2D(8, **d), nn.ReLU6(**d),
        _dw(8, 2, dtype=dtype, seed=3), nn.ReLU(**d),
        nn.Residual(nn.Sequential(_dw(8, 1, dtype=dtype, seed=4)), **d), nn.ReLU(**d),
        _dw(8, 1, k=5, pad=2, dtype=dtype, seed=5), nn.LeakyReLU(0.1, **d),
        _dw(8, 2, dtype=dtype, seed=6), nn.Sigmoid(**d),
        _dw(8, 1, dtype=dtype, seed=7), nn.Tanh(**d),
        _dw(8, 1, pad=0, dtype=dtype, seed=8),
    )


def _check_plan(plan, model, x):
    want = copy.deepcopy(model).eval().forward(x)
    got = plan(x)
    tol = 1e-5 if x.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * max(np.abs(want).max(), 1e-30))
    return got


@pytest.mark.parametrize("isa", gemm_isas())
@pytest.mark.parametrize("dtype", DTYPES)
def test_plan_takes_the_depthwise_kernel_with_fused_epilogues(isa, dtype, isa_restore, threads):
    K.set_isa(isa)
    rng = np.random.default_rng(2)
    model = _net(dtype)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2D):
            m.running_mean[...] = rng.standard_normal(8) * 0.3
            m.running_var[...] = rng.uniform(0.5, 2.0, 8)
    plan = fc_compile(model)
    for N, H, W in [(1, 23, 17), (3, 9, 30), (2, 12, 12)]:
        x = rng.standard_normal((N, 3, H, W)).astype(dtype)
        names = plan.compiled_for(x).names
        dw = [s for s in names if s.startswith("conv[depthwise]")]
        assert len(dw) == 7, names
        steps = " ".join(dw)
        for e in ("+clip", "+relu", "+add+relu", "+leaky_relu", "+sigmoid", "+tanh"):
            assert e in steps, (e, names)
        outs = []
        for nt in (1, 2):
            fastconv.set_num_threads(nt)
            outs.append(_check_plan(fc_compile(model), model, x))
        assert outs[0].tobytes() == outs[1].tobytes()


def test_plan_depthwise_exact_on_integers(threads):
    """Integer weights and inputs, ReLU6 and a residual: the fused plan equals
    model.forward bitwise (every sum exact), at 1 and 2 threads."""
    rng = np.random.default_rng(4)
    model = nn.Sequential(_dw(16, 1, seed=1), nn.ReLU6(),
                          nn.Residual(nn.Sequential(_dw(16, 1, seed=2))), nn.ReLU(),
                          _dw(16, 2, seed=3), nn.ReLU6())
    for m in model.modules():
        if isinstance(m, nn.Conv2D):
            m.weight.data[...] = rng.integers(-2, 3, m.weight.data.shape)
            m.bias.data[...] = rng.integers(-2, 3, m.bias.data.shape)
    x = ints(rng, (2, 16, 19, 21), np.float32, -3, 4)
    want = model.eval().forward(x)
    for nt in (1, 2):
        fastconv.set_num_threads(nt)
        plan = fc_compile(model)
        assert sum(s.startswith("conv[depthwise]") for s in plan.compiled_for(x).names) == 3
        np.testing.assert_array_equal(plan(x), want)


@pytest.mark.parametrize("isa", gemm_isas())
@pytest.mark.parametrize("k", [3, 5])
def test_plan_small_planes_keep_inf_and_nan_in_their_windows(isa, k, isa_restore):
    """Small same-padded stride-1 planes are computed flattened, the reads that wrap to
    the next row masked off: an Inf or NaN in a row's first or last column must reach
    exactly the outputs whose window holds it (a mask applied by multiplying would
    turn 0 * Inf into NaN in the neighbouring row's outputs)."""
    K.set_isa(isa)
    rng = np.random.default_rng(11)
    C = 5
    model = nn.Sequential(_dw(C, 1, k=k, pad=k // 2, seed=1))
    conv = model[0]
    conv.weight.data[...] = rng.integers(1, 4, conv.weight.data.shape)   # positive: no Inf - Inf
    conv.bias.data[...] = rng.integers(-2, 3, C)
    for H, W in [(7, 7), (14, 14), (5, 9), (28, 28), (3, 20)]:
        x = ints(rng, (2, C, H, W), np.float32)
        x[0, 1, H // 2, 0] = np.inf
        x[0, 2, 0, W - 1] = np.inf
        x[1, 3, H - 1, W - 1] = np.nan
        x[1, 4, H // 2, 0] = -np.inf
        plan = fc_compile(model)
        assert plan.compiled_for(x).names[0].startswith("conv[depthwise]")
        want = ref.conv2d(x, conv.weight.data, conv.bias.data, padding=k // 2, groups=C)
        np.testing.assert_array_equal(plan(x), want, err_msg=f"{H}x{W} k{k}")


def test_plan_keeps_other_grouped_convs_off_the_depthwise_kernel():
    model = nn.Sequential(nn.Conv2D(4, 8, 3, padding=1, groups=4, seed=1), nn.ReLU(),
                          nn.Conv2D(8, 8, 3, padding=2, dilation=2, groups=8, seed=2),
                          nn.Conv2D(8, 8, 3, stride=3, padding=1, groups=8, seed=3))
    x = np.random.default_rng(0).standard_normal((1, 4, 13, 13)).astype(np.float32)
    plan = fc_compile(model)
    assert not any("depthwise" in s for s in plan.compiled_for(x).names)
    _check_plan(plan, model, x)


def test_program_rejects_depthwise_on_a_non_depthwise_geometry():
    ops = [dict(kind="conv", algo="depthwise", N=1, C=4, L=9,
                conv=(1, 2, 3, 3, 4, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1),
                x=(0, 0), y=(1, 0), w=np.zeros(8, np.float32), b=None)]
    with pytest.raises(ValueError, match="depthwise"):
        K.PlanProgram(ops, 4, 18, 36, 0)


def test_tuned_plan_may_pick_depthwise():
    model = nn.Sequential(_dw(8, 1, seed=1), nn.ReLU6())
    x = np.random.default_rng(1).standard_normal((1, 8, 12, 12)).astype(np.float32)
    plan = fc_compile(model, tune=True)
    (name,) = plan.compiled_for(x).names
    assert name.split("]")[0] in ("conv[depthwise", "conv[direct", "conv[gemm", "conv[winograd")
    _check_plan(plan, model, x)
