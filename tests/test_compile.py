"""fastconv.compile: the compiled inference plan against model.eval().forward.

Every comparison is relative to the largest magnitude of the un-fused result:
1e-5 in float32 (BatchNorm folded into weights, a different conv algorithm
than the model's may be picked), 1e-10 in float64.
"""

import copy

import numpy as np
import pytest

import fastconv
from fastconv import _kernels as K
from fastconv import nn
from fastconv.inference import compile as fc_compile
from fastconv.inference.memory import plan_arena
from fastconv.models import MODELS, get_model
from conftest import DTYPES, gemm_isas, run_in_threads

RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}
INPUTS = {"lenet5": (1, 28, 28), "vgg_small": (3, 32, 32), "resnet_small": (3, 16, 16),
          "inception_small": (3, 16, 16), "densenet_small": (3, 16, 16)}


def check(plan, model, x, err=""):
    want = copy.deepcopy(model).eval().forward(x)
    got = plan(x)
    assert got.shape == want.shape and got.dtype == want.dtype, err
    mag = max(float(np.max(np.abs(want))), 1e-30) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=0, atol=RTOL[np.dtype(x.dtype)] * mag,
                               err_msg=err)
    return got


def trained_bn(model, rng):
    """Give every BatchNorm non-trivial statistics and affine parameters."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2D):
            C = m.num_features
            m.running_mean[...] = rng.standard_normal(C) * 0.5
            m.running_var[...] = rng.uniform(0.5, 2.0, C)
            if m.affine:
                m.weight.data[...] = rng.uniform(0.5, 1.5, C)
                m.bias.data[...] = rng.standard_normal(C) * 0.3
    return model


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- built-in models


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [1, 3, 8])
def test_builtin_models(name, dtype, batch):
    rng = np.random.default_rng(1)
    model = trained_bn(get_model(name, dtype=dtype, seed=3), rng)
    plan = fastconv.compile(model)
    check(plan, model, rand(rng, (batch,) + INPUTS[name], dtype), f"{name} batch {batch}")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_builtin_models_tuned(name):
    rng = np.random.default_rng(2)
    model = trained_bn(get_model(name, seed=4), rng)
    plan = fastconv.compile(model, tune=True)
    for batch in (1, 2):
        check(plan, model, rand(rng, (batch,) + INPUTS[name], np.float32))


def test_compile_does_not_modify_the_model():
    rng = np.random.default_rng(3)
    model = trained_bn(get_model("resnet_small", seed=1), rng).train()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    plan = fastconv.compile(model)
    plan(rand(rng, (2, 3, 16, 16), np.float32))
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)


def test_plan_is_a_snapshot_of_the_weights():
    rng = np.random.default_rng(4)
    model = get_model("lenet5", seed=2)
    x = rand(rng, (2, 1, 28, 28), np.float32)
    plan = fastconv.compile(model)
    y0 = plan(x)
    for p in model.parameters():
        p.data[...] *= 2
    np.testing.assert_array_equal(plan(x), y0)
    check(fastconv.compile(model), model, x)


# ---------------------------------------------------------------- random networks

ACTS = [lambda dt: nn.ReLU(dtype=dt), lambda dt: nn.LeakyReLU(0.2, dtype=dt),
        lambda dt: nn.Sigmoid(dtype=dt), lambda dt: nn.Tanh(dtype=dt)]


def block(rng, cin, cout, dt, stride=1, groups=1, bias=True, act=0, bn=True, k=3, dil=1):
    layers = [nn.Conv2D(cin, cout, k, stride=stride, padding=dil * (k // 2), dilation=dil,
                        groups=groups, bias=bias, dtype=dt, seed=int(rng.integers(1 << 30)))]
    if bn:
        layers.append(nn.BatchNorm2D(cout, dtype=dt))
    if act is not None:
        layers.append(ACTS[act % len(ACTS)](dt))
    return nn.Sequential(*layers)


def random_net(seed, dt):
    rng = np.random.default_rng(seed)
    c = int(rng.choice([4, 8, 12]))
    layers = [nn.BatchNorm2D(3, dtype=dt),                              # BN on the input: an op
              block(rng, 3, c, dt, act=int(rng.integers(4)), bias=bool(rng.integers(2)))]
    for i in range(int(rng.integers(2, 4))):
        kind = int(rng.integers(5))
        if kind == 0:                                                    # identity residual
            body = nn.Sequential(block(rng, c, c, dt, act=0), block(rng, c, c, dt, act=None))
            layers += [nn.Residual(body), ACTS[int(rng.integers(4))](dt)]
        elif kind == 1:                                                  # projection residual
            c2 = c + 4
            body = nn.Sequential(block(rng, c, c2, dt, stride=2, act=1),
                                 block(rng, c2, c2, dt, act=None))
            short = block(rng, c, c2, dt, stride=2, act=None, k=1)
            layers += [nn.Residual(body, short), nn.ReLU(dtype=dt)]
            c = c2
        elif kind == 2:                                                  # inception-like concat
            a = block(rng, c, 4, dt, k=1, act=2)
            b = nn.Sequential(block(rng, c, 4, dt, k=1, act=0), block(rng, 4, 6, dt, act=3))
            p = nn.Sequential(nn.MaxPool2D(3, 1, 1, dtype=dt), block(rng, c, 2, dt, k=1, act=0))
            layers += [nn.Concat(a, b, p), nn.BatchNorm2D(12, dtype=dt)]  # BN after a concat
            c = 12
        elif kind == 3:                                                  # grouped / depthwise
            g = c if rng.integers(2) else 2
            layers += [block(rng, c, c, dt, groups=g, act=int(rng.integers(4)),
                             dil=int(rng.integers(1, 3))),
                       nn.AvgPool2D(2, ceil_mode=True, count_include_pad=False, dtype=dt)]
        else:                                                            # strided + pools
            layers += [block(rng, c, c, dt, stride=2, act=1, bn=False), nn.Dropout(0.5, dtype=dt),
                       nn.MaxPool2D(2, stride=1, padding=1, dtype=dt), nn.Tanh(dtype=dt)]
    return trained_bn(nn.Sequential(*layers), rng), c


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dtype", DTYPES)
def test_random_networks(seed, dtype):
    rng = np.random.default_rng(100 + seed)
    body, c = random_net(seed, dtype)
    shape = (3, 16, 16)
    if seed % 2:
        head = [nn.GlobalAvgPool2D(dtype=dtype), nn.Linear(c, 7, dtype=dtype, seed=5),
                nn.Sigmoid(dtype=dtype)]
    else:  # Flatten (a view) into a Linear sized for whatever the body leaves
        feats = int(np.prod(copy.deepcopy(body).eval().forward(rand(rng, (1,) + shape, dtype)).shape[1:]))
        head = [nn.Flatten(dtype=dtype), nn.Linear(feats, 9, bias=False, dtype=dtype, seed=6),
                nn.LeakyReLU(0.1, dtype=dtype)]
    model = nn.Sequential(body, *head)
    plan = fastconv.compile(model)
    for batch in (1, 3, 8):
        check(plan, model, rand(rng, (batch,) + shape, dtype), f"seed {seed} batch {batch}")


@pytest.mark.parametrize("fuse_pool", [True, False])
def test_fusion_rules(fuse_pool):
    dt = np.float32
    model = trained_bn(nn.Sequential(
        nn.Conv2D(3, 8, 3, padding=1, dtype=dt, seed=1), nn.BatchNorm2D(8, dtype=dt),
        nn.ReLU(dtype=dt), nn.MaxPool2D(2, dtype=dt),
        nn.Residual(nn.Sequential(nn.Conv2D(8, 8, 3, padding=1, bias=False, dtype=dt, seed=2),
                                  nn.BatchNorm2D(8, dtype=dt))),
        nn.ReLU(dtype=dt), nn.GlobalAvgPool2D(dtype=dt), nn.Linear(8, 3, dtype=dt, seed=3),
        nn.Tanh(dtype=dt)), np.random.default_rng(0))
    plan = fastconv.compile(model, fuse_pool=fuse_pool)
    ops = [n.op for n in plan.fused.nodes]
    assert ops == (["conv"] if fuse_pool else ["conv", "maxpool"]) + ["conv", "gap", "linear"]
    first = plan.fused.nodes[0]
    assert [s[0] for s in first.attrs["epi"]] == ["act"] and first.attrs.get("folded")
    assert [s[0] for s in plan.fused.nodes[-3].attrs["epi"]] == ["add", "act"]
    check(plan, model, rand(np.random.default_rng(1), (3, 3, 12, 12), dt))


def test_identity_and_view_networks():
    rng = np.random.default_rng(5)
    for model in (nn.Sequential(nn.Flatten()), nn.Sequential(nn.Dropout(0.3)),
                  nn.Sequential(nn.ReLU(), nn.Flatten()), nn.Concat(nn.Sequential(), nn.ReLU()),
                  nn.Residual(nn.Sequential())):
        plan = fastconv.compile(model)
        x = rand(rng, (2, 3, 4, 5), np.float32)
        y = check(plan, model, x, repr(model))
        assert not np.shares_memory(y, x)


# ---------------------------------------------------------------- shapes, threads, errors


def test_changing_shapes_and_repeated_calls():
    rng = np.random.default_rng(6)
    model = trained_bn(get_model("resnet_small", seed=5), rng)
    plan = fastconv.compile(model)
    xs = [rand(rng, s, np.float32) for s in [(1, 3, 16, 16), (4, 3, 9, 13), (2, 3, 32, 32),
                                             (1, 3, 16, 16), (0, 3, 8, 8)]]
    first = [plan(x) for x in xs]
    for x, y0 in zip(xs, first):
        np.testing.assert_array_equal(plan(x), y0)
        check(plan, model, x)
    # non-contiguous and read-only inputs are accepted and never written
    x = rand(rng, (3, 3, 16, 32), np.float32)[:, :, :, ::2]
    x.flags.writeable = False
    keep = x.copy()
    check(plan, model, x)
    np.testing.assert_array_equal(x, keep)


def test_threads_share_one_plan(threads):
    rng = np.random.default_rng(7)
    model = trained_bn(get_model("resnet_small", seed=6), rng)
    plan = fastconv.compile(model)
    xs = [rand(rng, (b, 3, 16, 16), np.float32) for b in (1, 2, 3, 1)]
    want = [copy.deepcopy(model).eval().forward(x) for x in xs]
    fastconv.set_num_threads(2)

    def work(i):
        for _ in range(30):
            j = (i + _) % len(xs)
            np.testing.assert_allclose(plan(xs[j]), want[j], rtol=0,
                                       atol=1e-5 * np.abs(want[j]).max())

    run_in_threads(work, n=4)


@pytest.mark.parametrize("nthreads", [1, 2, 3])
def test_thread_counts(threads, nthreads):
    rng = np.random.default_rng(8)
    model = trained_bn(get_model("vgg_small", seed=7), rng)
    fastconv.set_num_threads(nthreads)
    plan = fastconv.compile(model)
    for batch in (1, 3):
        check(plan, model, rand(rng, (batch, 3, 32, 32), np.float32))


def _error(fn, *args):
    with pytest.raises(Exception) as e:
        fn(*args)
    return type(e.value), str(e.value)


@pytest.mark.parametrize("bad", [
    lambda: np.zeros((1, 2, 28, 28), np.float32),          # channels
    lambda: np.zeros((1, 28, 28), np.float32),             # ndim
    lambda: np.zeros((1, 1, 28, 28), np.float64),          # dtype
    lambda: np.zeros((1, 1, 28, 28), np.int32),            # dtype
    lambda: [[0.0]],                                       # not an array
    lambda: np.zeros((1, 1, 8, 8), np.float32),            # kernel larger than the input
    lambda: np.zeros((1, 1, 32, 32), np.float32),          # Linear features
])
def test_bad_input_same_errors_as_model(bad):
    model = get_model("lenet5")
    plan = fastconv.compile(model)
    want = _error(copy.deepcopy(model).eval().forward, bad())
    assert _error(plan, bad()) == want
    assert _error(plan, bad()) == want        # and again (nothing cached from the failure)


def test_residual_and_concat_shape_errors():
    x = np.zeros((1, 4, 6, 6), np.float32)
    for model in (nn.Residual(nn.Conv2D(4, 5, 1)),
                  nn.Concat(nn.Conv2D(4, 2, 1), nn.Conv2D(4, 2, 3))):
        want = _error(copy.deepcopy(model).eval().forward, x)
        assert _error(fastconv.compile(model), x) == want


def test_unsupported_module():
    class Doubler(nn.Module):
        def forward(self, x):
            return 2 * x

    with pytest.raises(TypeError, match="cannot lower model.1 .Doubler."):
        fastconv.compile(nn.Sequential(nn.ReLU(), Doubler()))

    class ScaledConv(nn.Conv2D):          # computes something else than its weight says
        def forward(self, x):
            return 2 * super().forward(x)

    with pytest.raises(TypeError, match="cannot lower model.0 .ScaledConv."):
        fastconv.compile(nn.Sequential(ScaledConv(1, 2, 3)))

    class HalfConv(nn.Conv2D):            # declares the weight it uses: lowered with it
        def effective_weight(self):
            return self.weight.data / 2

        def forward(self, x):
            return fastconv.conv2d(x, self.effective_weight(), self.bias.data)

    m = nn.Sequential(HalfConv(1, 2, 3, seed=0))
    x = np.random.default_rng(0).standard_normal((2, 1, 7, 7)).astype(np.float32)
    np.testing.assert_allclose(fastconv.compile(m)(x), m.forward(x), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- pieces


def test_arena_planning_reuses_buffers():
    iv = {"a": (0, 1, 100), "b": (1, 2, 100), "c": (2, 3, 100), "d": (3, 4, 50)}
    off, total = plan_arena(iv, 4)
    assert off["a"] == off["c"] and total == 2 * 112
    for p in iv:
        for q in iv:
            if p < q and not (iv[p][1] < iv[q][0] or iv[q][1] < iv[p][0]):
                sp, sq = -(-iv[p][2] // 16) * 16, -(-iv[q][2] // 16) * 16
                assert off[p] + sp <= off[q] or off[q] + sq <= off[p]


@pytest.fixture(params=gemm_isas())
def isa(request):
    prev = K.isa()
    assert K.set_isa(request.param) == request.param
    yield request.param
    K.set_isa(prev)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M, Kd, nv", [(1, 1, 1), (5, 3, 1), (17, 33, 2), (64, 100, 4),
                                       (500, 800, 1), (7, 16, 3), (33, 1023, 5)])
def test_gemv_exact_on_integers(isa, dtype, M, Kd, nv):
    rng = np.random.default_rng(M * 1000 + Kd)
    w = rng.integers(-8, 9, (M, Kd)).astype(dtype)
    x = rng.integers(-8, 9, (nv, Kd)).astype(dtype)
    b = rng.integers(-8, 9, M).astype(dtype)
    want = x.astype(np.float64) @ w.astype(np.float64).T + b
    for nt in (1, 2):
        y = np.full((nv, M), np.nan, dtype)
        K.gemv(w, x, b, y, nt)
        np.testing.assert_array_equal(y, want)
        y[...] = np.nan
        K.gemv(w, x, np.empty(0, dtype), y, nt)
        np.testing.assert_array_equal(y, want - b)


def test_gemv_rejects_bad_shapes():
    w = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError):
        K.gemv(w, np.zeros((1, 5), np.float32), np.empty(0, np.float32),
               np.zeros((1, 3), np.float32), 1)
    with pytest.raises(ValueError):
        K.gemv(w, np.zeros((1, 4), np.float32), np.zeros(2, np.float32),
               np.zeros((1, 3), np.float32), 1)


def test_program_checks_buffer_extents():
    w = np.zeros((3, 4), np.float32)
    op = dict(kind="linear", algo="gemv", N=1, C=3, L=1, in_features=4, x=(0, 0), y=(1, 0),
              w=w, b=None)
    K.PlanProgram([op], 4, 4, 3, 0)
    with pytest.raises(ValueError, match="outside"):
        K.PlanProgram([dict(op, y=(1, 1))], 4, 4, 3, 0)
    with pytest.raises(ValueError, match="outside"):
        K.PlanProgram([dict(op, x=(2, 0))], 4, 4, 3, 3)
    with pytest.raises(ValueError):
        K.PlanProgram([dict(op, w=np.zeros((3, 5), np.float32))], 4, 4, 3, 0)


def test_profile_lists_every_op():
    model = get_model("lenet5")
    plan = fastconv.compile(model)
    prof = plan.profile(np.zeros((1, 1, 28, 28), np.float32), repeat=2)
    assert len(prof) == 4 and all(t >= 0 for _, t in prof)
    assert prof[0][0].startswith("conv[") and "maxpool" in prof[0][0]
