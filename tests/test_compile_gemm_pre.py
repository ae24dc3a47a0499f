"""fastconv.compile: a "gemm" conv's weights packed once per output-channel share when
the plan is built (fastconv._kernels.GemmWeights, csrc/conv_gemm_pre.h) instead of at
every kernel call.

The plans are compared with the model run on fastconv.reference, and bitwise with the
same schedule built without the packed weights (each share then packs its weights at
every call; every output is the same multiply-add chain). This is done at every ISA
level the CPU has, in float32 and float64, with 1 to 3 threads, at batch 1 (an image
cut into channel shares), batch 3 (a third of an image per unit) and batch 4 (whole
images). The executor must use the packed panels when it cuts the op as they were
packed, and pack as before when it does not (another thread count, another ISA
level); the tests see which by giving the plan panels packed from other weights.
"""

import numpy as np
import pytest

import fastconv
from fastconv import _kernels as K
from fastconv.inference import plan as plan_mod
from conftest import DTYPES, assert_close, gemm_isas, reference_forward
# the gemmt tests' network: 3x3 convs read through a padded slab, a 1x1 conv read in
# place, a strided one; 70 / 72 / 100 output channels (no share is whole tiles)
from test_compile_gemmt import small_net


N_CONVS = 5


def compiled(model, x, pack=True, monkeypatch=None):
    """The plan's schedule for x with every conv run as "gemm"; without the weights
    packed once when ``pack`` is false (GemmWeights replaced for the build)."""
    plan = fastconv.compile(model)
    c = plan.compiled_for(x)
    convs = [n.output for n in plan.fused.nodes if n.op == "conv"]
    if pack:
        return plan_mod._Compiled(plan, c.shapes, c.geoms, {v: "gemm" for v in convs})
    with monkeypatch.context() as m:
        m.setattr(K, "GemmWeights", lambda *a: None)
        return plan_mod._Compiled(plan, c.shapes, c.geoms, {v: "gemm" for v in convs})


def n_packed(c):
    return sum(d.get("wpre") is not None for d in c.ops if d["kind"] == "conv")


@pytest.fixture
def restore(isa_restore, threads):
    """The SIMD level and the thread count put back after the test."""
    yield


def _input(batch, dt, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 20, 9, 7)).astype(dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("nthreads", [1, 2, 3])
@pytest.mark.parametrize("batch", [1, 3, 4])
def test_packed_once_matches_reference_and_per_call(dt, nthreads, batch, restore,
                                                    monkeypatch):
    fastconv.set_num_threads(nthreads)
    model = small_net(dt)
    x = _input(batch, dt, batch)
    want = reference_forward(model, x)
    for isa in gemm_isas():
        K.set_isa(isa)
        pre, per_call = compiled(model, x), compiled(model, x, False, monkeypatch)
        assert (n_packed(pre), n_packed(per_call)) == (N_CONVS, 0), isa
        names = [n for n, _ in pre.profile(x, 1)]
        assert sum("conv[gemm]" in n for n in names) == N_CONVS, names
        got = pre.run(x)
        assert_close(got, want, dt, err_msg=isa)
        np.testing.assert_array_equal(got, per_call.run(x), err_msg=isa)


def _with_panels_of(c, w_of):
    """c rebuilt with every conv's panels packed from w_of(w) instead of its weights
    (the op keeps its own weights for the executor's fallback)."""
    ops = []
    for d in c.ops:
        d = dict(d)
        if d.get("wpre") is not None:
            p = d["wpre"]
            d["wpre"] = K.GemmWeights(w_of(d["w"]), d["conv"], p.kalign, p.chunk, p.nth)
        ops.append(d)
    prog = c.prog
    c.prog = K.PlanProgram(ops, prog.itemsize, prog.x_size, prog.y_size, prog.arena_size)
    return c


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("batch", [1, 3, 4])
def test_executor_uses_the_panels_for_the_cut_they_were_packed_for(dt, batch, restore):
    """Panels packed from the negated weights: the plan's output changes when they are
    used, i.e. at the thread count the plan was built with; at another one the
    executor cuts the convs into other shares and packs the op's own weights."""
    fastconv.set_num_threads(2)
    model = small_net(dt)
    x = _input(batch, dt)
    want = compiled(model, x).run(x)
    c = _with_panels_of(compiled(model, x), lambda w: -w)
    assert not np.allclose(c.run(x), want)
    if batch in (1, 3):     # shares of an image: another count of them at 1 thread
        fastconv.set_num_threads(1)
        np.testing.assert_array_equal(c.run(x), want)


@pytest.mark.parametrize("dt", DTYPES)
def test_panels_of_another_isa_level_are_not_used(dt, restore):
    isas = gemm_isas()
    if len(isas) < 2:
        pytest.skip("one GEMM ISA level on this CPU")
    fastconv.set_num_threads(2)
    model = small_net(dt)
    x = _input(1, dt)
    K.set_isa(isas[0])
    c = _with_panels_of(compiled(model, x), lambda w: -w)
    for isa in isas[1:]:
        K.set_isa(isa)
        np.testing.assert_array_equal(c.run(x), compiled(model, x).run(x), err_msg=isa)


def test_packed_weights_check_their_arguments():
    w = np.ones((8, 4, 3, 3), np.float32)
    conv = (1, 4, 6, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    p = K.GemmWeights(w, conv, 4, 1, 2)
    assert (p.kp, len(p.offsets), p.itemsize) == (2, 2, 4)
    assert p.nbytes >= 2 * 8 * 36 // 2 * 4
    with pytest.raises(ValueError, match="C-contiguous native float32"):
        K.GemmWeights(w.astype(np.int32), conv, 4, 1, 2)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.GemmWeights(np.ones((3, 3, 4, 8), np.float32).T, conv, 4, 1, 2)
    with pytest.raises(ValueError, match="do not match the convolution"):
        K.GemmWeights(np.ones((8, 4, 1, 1), np.float32), conv, 4, 1, 2)
    grouped = conv[:7] + (2,) + conv[8:]
    with pytest.raises(ValueError, match="groups must be 1"):
        K.GemmWeights(np.ones((8, 2, 3, 3), np.float32), grouped, 4, 1, 2)
    with pytest.raises(ValueError, match="must be at least 1"):
        K.GemmWeights(w, conv, 0, 1, 2)


def test_plan_program_rejects_panels_of_another_cut(restore):
    fastconv.set_num_threads(2)
    dt = np.float32
    model = small_net(dt)
    x = _input(1, dt)
    c = compiled(model, x)
    prog = c.prog
    for change in ("kalign", "conv", "dtype"):
        ops = [dict(d) for d in c.ops]
        d = next(d for d in ops if d.get("wpre") is not None)
        p = d["wpre"]
        if change == "kalign":
            d["wpre"] = K.GemmWeights(d["w"], d["conv"], p.kalign + 1, p.chunk, p.nth)
        elif change == "conv":
            other = (2,) + tuple(d["conv"][1:])
            d["wpre"] = K.GemmWeights(d["w"], other, p.kalign, p.chunk, p.nth)
        else:
            d["wpre"] = K.GemmWeights(d["w"].astype(np.float64), d["conv"], p.kalign,
                                      p.chunk, p.nth)
        with pytest.raises(ValueError, match="packed weights"):
            K.PlanProgram(ops, prog.itemsize, prog.x_size, prog.y_size, prog.arena_size)
    ops = [dict(d) for d in c.ops]
    next(d for d in ops if d.get("wpre") is not None)["wpre"] = "panels"
    with pytest.raises(ValueError, match="wpre must be GemmWeights"):
        K.PlanProgram(ops, prog.itemsize, prog.x_size, prog.y_size, prog.arena_size)
