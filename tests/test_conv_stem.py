"""The stem kernel (csrc/conv_stem.c): the compiled plan's "stem" convs, few input
channels (C <= 4, groups 1, dilation 1, strides 1 or 2, any kernel and padding) with
the output pixels along the vector lanes and the epilogue fused. The C test
csrc/tests/test_conv_stem_c.c checks the kernel itself on random geometries.

Integer-valued inputs and weights make every float32 / float64 sum exact, so one conv
op run as "stem" is compared bitwise with the same op run as "direct" (and with
fastconv.reference, the asymmetric padding applied by np.pad), with every epilogue
step, with and without a fused max / avg pool, at batch 1 and 3, at 1 and 2 threads
and under every SIMD level this CPU runs.
"""

import copy

import numpy as np
import pytest

import fastconv
from fastconv import _kernels as K
from fastconv import nn
from fastconv import reference as ref
from fastconv.inference import compile as fc_compile
from fastconv.inference import plan as plan_mod
from conftest import DTYPES, gemm_isas


def ints(rng, shape, dtype, lo=-3, hi=4):
    return rng.integers(lo, hi, shape).astype(dtype)


def _steps(kinds, dtype, rng, Kout):
    """The plan's epilogue tuples for step kinds; ints for every parameter."""
    out = []
    for k in kinds:
        if k == "affine":
            out.append(("affine", ints(rng, Kout, dtype, -2, 3), ints(rng, Kout, dtype), None,
                        0.0, 0.0))
        elif k == "bias":
            out.append(("bias", ints(rng, Kout, dtype), None, None, 0.0, 0.0))
        elif k == "add":
            out.append(("add", None, None, (2, 0), 0.0, 0.0))
        elif k == "leaky_relu":
            out.append(("leaky_relu", None, None, None, 0.5, 0.0))
        elif k == "clip":
            out.append(("clip", None, None, None, -2.0, 6.0))
        else:
            out.append((k, None, None, None, 0.0, 0.0))
    return out


def _epi_ref(v, steps, src):
    for s in steps:
        p0 = None if s[1] is None else s[1].reshape(1, -1, 1, 1)
        p1 = None if s[2] is None else s[2].reshape(1, -1, 1, 1)
        if s[0] == "affine":
            v = v * p0 + p1
        elif s[0] == "bias":
            v = v + p0
        elif s[0] == "add":
            v = v + src
        elif s[0] == "relu":
            v = np.where(v <= 0, 0, v)
        elif s[0] == "leaky_relu":
            v = np.where(v > 0, v, v * s[4])
        elif s[0] == "clip":
            v = np.clip(v, s[4], s[5])
        elif s[0] == "sigmoid":
            v = 1 / (1 + np.exp(-v))
        elif s[0] == "tanh":
            v = np.tanh(v)
    return v


def run_conv_op(algo, x, w, b, stride, pads, steps, src, pool, nthreads):
    """One plan conv op (geometry with pads (top, bottom, left, right)), its epilogue
    steps (an "add" reads src, placed at the arena's start) and optionally a fused
    pool ("maxpool" / "avgpool", kernel, stride, padding, ceil_mode)."""
    N, C, H, W = x.shape
    Kout, _, R, S = w.shape
    pt, pb, pl, pr = pads
    P = (H + pt + pb - R) // stride[0] + 1
    Q = (W + pl + pr - S) // stride[1] + 1
    ysize = N * Kout * P * Q
    conv = (N, C, H, W, Kout, R, S, 1, stride[0], stride[1], pt, pb, pl, pr, 1, 1)
    d = dict(kind="conv", algo=algo, N=N, C=Kout, L=P * Q, conv=conv, x=(0, 0), w=w.ravel(),
             b=b, kalign=plan_mod._conv_kalign(
                 type("G", (), dict(groups=1, K=Kout))(), nthreads), chunk=1, epi=steps)
    arena = [src.ravel()]
    if pool is None:
        d["y"] = (1, 0)
        out_shape = (N, Kout, P, Q)
    else:
        kind, k, s, p, ceil = pool
        pooled = (ref.max_pool2d if kind == "maxpool" else ref.avg_pool2d)(
            np.zeros((1, 1, P, Q)), k, s, p, ceil_mode=ceil)
        P2, Q2 = pooled.shape[2:]
        d.update(y=(2, ysize), y2=(1, 0), fused_pool=kind,
                 pool=(N, Kout, P, Q, k, k, s, s, p, p, 1, 1, ceil, True))
        arena.append(np.zeros(ysize, x.dtype))
        if kind == "maxpool":
            d["aux"] = (2, 2 * ysize)
            arena.append(np.zeros(N * Kout * P2 * Q2 * 8 // x.itemsize, x.dtype))
        out_shape = (N, Kout, P2, Q2)
    arena = np.concatenate(arena).astype(x.dtype)
    prog = K.PlanProgram([d], x.itemsize, x.size, int(np.prod(out_shape)), arena.size)
    y = np.full(out_shape, -777, x.dtype)
    K.plan_run(prog, x.ravel(), y.reshape(-1), arena, nthreads, None)
    return y


CASES = [  # (C, K, k, stride, pads, H, W)
    (3, 32, 3, (2, 2), (1, 1, 1, 1), 17, 23),
    (3, 13, 7, (2, 2), (3, 2, 1, 3), 19, 21),
    (1, 6, 5, (1, 1), (2, 2, 2, 2), 11, 28),
    (4, 9, 1, (1, 2), (0, 1, 2, 0), 7, 33),
    (2, 20, 3, (1, 1), (0, 2, 1, 0), 9, 40),
    (3, 64, 3, (2, 2), (0, 0, 0, 0), 15, 15),
    (4, 5, 5, (2, 1), (1, 0, 0, 2), 12, 5),
    (1, 16, 7, (1, 1), (3, 3, 3, 3), 3, 4),
    # many taps at rows a whole number of AVX-512 vectors wide (27 outputs): tiles of
    # 3 rows, then one of 2 (14 rows) or of 1 (13 rows)
    (3, 20, 7, (2, 2), (3, 3, 3, 3), 27, 53),
    (4, 11, 5, (1, 1), (2, 2, 2, 2), 13, 28),
]
EPIS = [[], ["relu"], ["clip"], ["bias", "relu"], ["affine", "add", "leaky_relu"],
        ["add", "clip"], ["bias", "sigmoid"], ["tanh"]]
POOLS = [None, ("maxpool", 3, 2, 0, True), ("maxpool", 3, 2, 1, False), ("avgpool", 2, 2, 0, False)]


@pytest.mark.parametrize("isa", gemm_isas())
@pytest.mark.parametrize("dtype", DTYPES)
def test_stem_op_matches_direct_and_reference(isa, dtype, isa_restore):
    K.set_isa(isa)
    rng = np.random.default_rng(11)
    n = 0
    for i, (C, Kout, k, stride, pads, H, W) in enumerate(CASES):
        for N in (1, 3):
            x = ints(rng, (N, C, H, W), dtype)
            w = ints(rng, (Kout, C, k, k), dtype)
            b = ints(rng, Kout, dtype)
            xp = np.pad(x, ((0, 0), (0, 0), pads[:2], pads[2:]))
            conv = ref.conv2d(xp, w, b, stride=stride)
            src = ints(rng, conv.shape, dtype)
            for j, kinds in enumerate(EPIS):
                steps = _steps(kinds, dtype, rng, Kout)
                pool = POOLS[(i + j + N) % len(POOLS)]
                want = _epi_ref(conv.astype(np.float64), steps, src).astype(dtype)
                if pool is not None:
                    f = ref.max_pool2d if pool[0] == "maxpool" else ref.avg_pool2d
                    want = f(want, pool[1], pool[2], pool[3], ceil_mode=pool[4])
                outs = {}
                for algo, nt in (("stem", 1), ("stem", 2), ("direct", 1)):
                    outs[algo, nt] = run_conv_op(algo, x, w, b, stride, pads, steps, src, pool, nt)
                msg = f"case {i} N{N} epi {kinds} pool {pool}"
                assert outs["stem", 1].tobytes() == outs["direct", 1].tobytes(), msg
                assert outs["stem", 1].tobytes() == outs["stem", 2].tobytes(), msg
                if {"sigmoid", "tanh"} & set(kinds) or (pool and pool[0] == "avgpool"):
                    tol = 1e-6 if dtype == np.float32 else 1e-13
                    np.testing.assert_allclose(outs["stem", 1], want, rtol=tol, atol=tol,
                                               err_msg=msg)
                else:
                    np.testing.assert_array_equal(outs["stem", 1], want, err_msg=msg)
                n += 1
    assert n == len(CASES) * 2 * len(EPIS)


@pytest.mark.parametrize("dtype", DTYPES)
def test_stem_random_values_close_to_reference(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 30, 31)).astype(dtype)
    w = rng.standard_normal((24, 3, 7, 7)).astype(dtype)
    b = rng.standard_normal(24).astype(dtype)
    want = ref.conv2d(np.pad(x, ((0, 0), (0, 0), (3, 2), (2, 3))), w, b, stride=2)
    got = run_conv_op("stem", x, w, b, (2, 2), (3, 2, 2, 3), [], np.zeros(1, dtype), None, 2)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def _stem_net(dtype):
    d = dict(dtype=dtype)
    return nn.Sequential(nn.Conv2D(3, 32, 3, stride=2, padding=1, seed=1, **d),
                         nn.BatchNorm2D(32, **d), nn.ReLU6(**d),
                         nn.Conv2D(32, 16, 1, seed=2, **d), nn.ReLU(**d))


@pytest.mark.parametrize("isa", gemm_isas())
@pytest.mark.parametrize("dtype", DTYPES)
def test_plan_takes_the_stem_kernel(isa, dtype, isa_restore, threads):
    K.set_isa(isa)
    rng = np.random.default_rng(3)
    model = _stem_net(dtype)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2D):
            m.running_mean[...] = rng.standard_normal(32) * 0.3
            m.running_var[...] = rng.uniform(0.5, 2.0, 32)
    for N, H, W in [(1, 37, 45), (3, 16, 16), (8, 9, 30)]:
        x = rng.standard_normal((N, 3, H, W)).astype(dtype)
        want = copy.deepcopy(model).eval().forward(x)
        outs = []
        for nt in (1, 2):
            fastconv.set_num_threads(nt)
            plan = fc_compile(model)
            names = plan.compiled_for(x).names
            assert names[0].startswith("conv[stem]") and "+clip" in names[0], names
            got = plan(x)
            tol = 1e-5 if dtype == np.float32 else 1e-10
            np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max())
            outs.append(got)
        assert outs[0].tobytes() == outs[1].tobytes()


def test_plan_keeps_other_convs_off_the_stem_kernel():
    """Too few output channels (1 -> 6), channels not in blocks of 8 (LeNet-5's 1 -> 20),
    5 input channels, groups, dilation 2, stride 3: not stem."""
    model = nn.Sequential(nn.Conv2D(1, 6, 5, padding=2, seed=1), nn.ReLU(),
                          nn.Conv2D(6, 20, 3, seed=2),
                          nn.Conv2D(20, 20, 3, padding=2, dilation=2, seed=3))
    x = np.random.default_rng(0).standard_normal((1, 1, 20, 20)).astype(np.float32)
    plan = fc_compile(model)
    assert not any("stem" in s for s in plan.compiled_for(x).names)
    m1 = nn.Sequential(nn.Conv2D(1, 20, 5, seed=1), nn.ReLU())
    x1 = np.random.default_rng(0).standard_normal((1, 1, 28, 28)).astype(np.float32)
    assert not any("stem" in s for s in fc_compile(m1).compiled_for(x1).names)
    m2 = nn.Sequential(nn.Conv2D(4, 16, 3, stride=3, seed=1), nn.Conv2D(16, 16, 3, seed=2))
    x2 = np.random.default_rng(0).standard_normal((1, 4, 20, 20)).astype(np.float32)
    assert not any("stem" in s for s in fc_compile(m2).compiled_for(x2).names)


def test_program_rejects_stem_on_other_geometries():
    for conv in [(1, 5, 3, 3, 4, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1),     # C = 5
                 (1, 4, 3, 3, 4, 1, 1, 2, 1, 1, 0, 0, 0, 0, 1, 1),     # groups 2
                 (1, 2, 5, 5, 4, 3, 3, 1, 1, 1, 0, 0, 0, 0, 2, 2),     # dilation 2
                 (1, 2, 7, 7, 4, 1, 1, 1, 3, 3, 0, 0, 0, 0, 1, 1)]:    # stride 3
        N, C, H, W, Kout, R, S, G, sh, sw = conv[:10]
        P, Q = (H - (R - 1) * conv[14] - 1) // sh + 1, (W - (S - 1) * conv[15] - 1) // sw + 1
        ops = [dict(kind="conv", algo="stem", N=N, C=Kout, L=P * Q, conv=conv, x=(0, 0),
                    y=(1, 0), w=np.zeros(Kout * C // G * R * S, np.float32), b=None)]
        with pytest.raises(ValueError, match="stem"):
            K.PlanProgram(ops, 4, N * C * H * W, N * Kout * P * Q, 0)


def test_tuned_plan_may_pick_stem():
    model = nn.Sequential(nn.Conv2D(3, 16, 3, stride=2, padding=1, seed=1), nn.ReLU6())
    x = np.random.default_rng(1).standard_normal((1, 3, 24, 24)).astype(np.float32)
    plan = fc_compile(model, tune=True)
    (name,) = plan.compiled_for(x).names
    assert name.split("]")[0] in ("conv[stem", "conv[direct", "conv[gemm", "conv[winograd",
                                  "conv[gemmt")
    np.testing.assert_allclose(plan(x), model.eval().forward(x), rtol=1e-5, atol=1e-5)
