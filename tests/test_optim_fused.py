"""SGD's fused native update (optim.SGD._fused_update, csrc/optim.c): bitwise the NumPy
update it replaces, for float32 and float64, with and without momentum and weight decay,
across steps and a checkpoint; the NumPy lines still run where the kernel does not apply."""

import numpy as np
import pytest

from fastconv import optim
from fastconv import _kernels as K
from fastconv.nn.module import Parameter


def _pair(rng, dtype, **hyper):
    shapes = [(300, 500), (20, 1, 5, 5), (7,)]       # one above the threads' threshold
    ps = [Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]
    qs = [Parameter(p.data.copy()) for p in ps]
    fused = optim.SGD(ps, **hyper)
    plain = optim.SGD(qs, **hyper)
    plain._fused_update = lambda *a: False          # the NumPy lines only
    return ps, qs, fused, plain


def _steps(rng, ps, qs, fused, plain, n):
    for _ in range(n):
        for p, q in zip(ps, qs):
            g = rng.standard_normal(p.data.shape).astype(p.data.dtype)
            p.grad[...] = g
            q.grad[...] = g
        fused.step()
        plain.step()


def _same(ps, qs, fused, plain):
    for p, q in zip(ps, qs):
        np.testing.assert_array_equal(p.data, q.data)
    for a, b in zip(fused.state, plain.state):
        assert set(a) == set(b)
        if "momentum_buffer" in a:
            np.testing.assert_array_equal(a["momentum_buffer"], b["momentum_buffer"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.9, 5e-4), (0.0, 1e-3)])
def test_fused_sgd_is_bitwise_the_numpy_update(dtype, momentum, weight_decay):
    rng = np.random.default_rng(0)
    ps, qs, fused, plain = _pair(rng, dtype, lr=0.05, momentum=momentum, weight_decay=weight_decay)
    _steps(rng, ps, qs, fused, plain, 4)
    _same(ps, qs, fused, plain)
    assert not np.array_equal(ps[0].data, qs[0].data * 0)     # something moved


def test_fused_sgd_resumes_from_a_checkpoint_bitwise():
    rng = np.random.default_rng(1)
    ps, qs, fused, plain = _pair(rng, np.float32, lr=0.1, momentum=0.9)
    _steps(rng, ps, qs, fused, plain, 2)
    # a checkpoint's buffers come back as they were saved; a Fortran-ordered one is taken
    # by the NumPy lines (the kernel needs C order) and gives the same numbers
    sd = fused.state_dict()
    sd["state"][1]["momentum_buffer"] = np.asfortranarray(sd["state"][1]["momentum_buffer"])
    fused.load_state_dict(sd)
    _steps(rng, ps, qs, fused, plain, 3)
    _same(ps, qs, fused, plain)


def test_fused_sgd_leaves_nesterov_and_dampening_to_numpy(monkeypatch):
    calls = []
    monkeypatch.setattr(optim, "sgd_step", lambda *a: calls.append(a))
    for hyper in (dict(momentum=0.9, nesterov=True), dict(momentum=0.9, dampening=0.1)):
        p = Parameter(np.ones((4, 4), np.float32))
        p.grad[...] = 1
        optim.SGD([p], lr=0.5, **hyper).step()
        want = 1 - 0.5 * (1.9 if hyper.get("nesterov") else 1.0)   # first step: buf = g
        np.testing.assert_allclose(p.data, want, rtol=1e-6)
    assert calls == []
    p = Parameter(np.ones((4, 4), np.float32))
    optim.SGD([p], lr=0.5, momentum=0.9).step()
    assert len(calls) == 1                          # the plain momentum step is fused


def test_sgd_step_kernel_refuses_mismatched_buffers():
    p = np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="buffer g has 7 elements"):
        K.sgd_step(p, np.zeros(7, np.float32), None, 0.1, 0.0, 0.0, False, 1)
    with pytest.raises(ValueError, match="buffer buf: float64 where"):
        K.sgd_step(p, np.zeros(8, np.float32), np.zeros(8), 0.1, 0.9, 0.0, False, 1)
    with pytest.raises(ValueError, match="buffer p: a writeable"):
        ro = np.zeros(8, np.float32)
        ro.flags.writeable = False
        K.sgd_step(ro, np.zeros(8, np.float32), None, 0.1, 0.0, 0.0, False, 1)
