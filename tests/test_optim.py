"""Optimisers and learning-rate schedules: the published update formulas, worked by hand
for a few steps (these run everywhere), and PyTorch's implementation as an extra oracle
when torch is installed; frozen parameters, checkpoints (state_dict round trips) and
argument validation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastconv
from fastconv import nn, optim

F64 = np.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Small kernel calls only; thread hand-offs would dominate on a busy machine.
    prev = fastconv.set_num_threads(1)
    yield
    fastconv.set_num_threads(prev)


def _params(seed=0, shapes=((3, 4), (4,), (2, 3, 2, 2))):
    rng = np.random.default_rng(seed)
    return [nn.Parameter(rng.standard_normal(s)) for s in shapes]


def _grads(params, step):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(p.shape) for p in params]


OPTIMS = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.1, momentum=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("sgd", dict(lr=0.05, momentum=0.5, weight_decay=0.01, dampening=0.2)),
    ("adam", dict(lr=0.01)),
    ("adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)),
    ("adamw", dict(lr=0.01)),
    ("adamw", dict(lr=0.03, betas=(0.85, 0.995), weight_decay=0.1)),
]

OURS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}


def _torch_opt(torch, name, tparams, kw):
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    kw = dict(kw)
    if name != "sgd":
        kw["foreach"] = False
    return cls(tparams, **kw)


@pytest.mark.parametrize("name, kw", OPTIMS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMS)])
def test_update_formulas_match_torch(name, kw):
    torch = pytest.importorskip("torch")
    params = _params()
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = OURS[name](params, **kw)
    topt = _torch_opt(torch, name, tparams, kw)
    for step in range(12):
        grads = _grads(params, step)
        for p, tp, g in zip(params, tparams, grads):
            p.grad[...] = g
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
        for p, tp in zip(params, tparams):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


# ---- hand-worked updates: one weight w0 = 1, gradients 1, 2, -1 (SGD) or 2, -2, 1 (Adam)

G_SGD = [1.0, 2.0, -1.0]
G_ADAM = [2.0, -2.0, 1.0]

HAND = [
    # SGD (torch.optim.SGD's documented form): g += wd*w; buf = g on the first step, then
    # buf = momentum*buf + (1 - dampening)*g; g = g + momentum*buf (Nesterov) or buf; w -= lr*g
    ("sgd", dict(lr=0.1), G_SGD,
     # w = 1 - 0.1 = 0.9;  0.9 - 0.2 = 0.7;  0.7 + 0.1 = 0.8
     [0.9, 0.7, 0.8]),
    ("sgd", dict(lr=0.1, momentum=0.9), G_SGD,
     # buf 1 -> w = 0.9;  buf 0.9 + 2 = 2.9 -> w = 0.9 - 0.29 = 0.61;
     # buf 2.61 - 1 = 1.61 -> w = 0.61 - 0.161 = 0.449
     [0.9, 0.61, 0.449]),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True), G_SGD,
     # buf 1, g = 1 + 0.9 = 1.9 -> w = 0.81;  buf 2.9, g = 2 + 2.61 = 4.61 -> w = 0.349;
     # buf 1.61, g = -1 + 1.449 = 0.449 -> w = 0.349 - 0.0449 = 0.3041
     [0.81, 0.349, 0.3041]),
    ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.5), G_SGD,
     # buf = g = 1 (no dampening on the first step) -> w = 0.9;
     # buf 0.9 + 0.5*2 = 1.9 -> w = 0.71;  buf 1.71 - 0.5 = 1.21 -> w = 0.589
     [0.9, 0.71, 0.589]),
    ("sgd", dict(lr=0.1, weight_decay=0.1), G_SGD,
     # g = 1 + 0.1*1 = 1.1 -> w = 0.89;  g = 2 + 0.089 = 2.089 -> w = 0.6811;
     # g = -1 + 0.06811 = -0.93189 -> w = 0.6811 + 0.093189 = 0.774289
     [0.89, 0.6811, 0.774289]),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1), G_SGD,
     # g = 1.1, buf 1.1, g + 0.9 buf = 2.09 -> w = 0.791;
     # g = 2 + 0.0791 = 2.0791, buf 0.99 + 2.0791 = 3.0691, g + 0.9 buf = 4.84129 -> w = 0.306871;
     # g = -1 + 0.0306871 = -0.9693129, buf 2.76219 - 0.9693129 = 1.7928771,
     # g + 0.9 buf = 0.64427649 -> w = 0.242443351
     [0.791, 0.306871, 0.242443351]),
    # Adam (Kingma & Ba, Algorithm 1, eps outside the square root as in torch.optim.Adam):
    # m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps).
    # lr 0.1, betas (0.5, 0.75), eps 0.01:
    #   t=1: m = 1, v = 1; mhat = 1/0.5 = 2, vhat = 1/0.25 = 4; step 0.1*2/2.01 = 0.0995024875621890547
    #   t=2: m = 0.5 - 1 = -0.5, v = 0.75 + 1 = 1.75; mhat = -0.5/0.75 = -2/3, vhat = 1.75/0.4375 = 4;
    #        step 0.1*(-2/3)/2.01 = -0.0331674958540630182
    #   t=3: m = -0.25 + 0.5 = 0.25, v = 1.3125 + 0.25 = 1.5625; mhat = 0.25/0.875 = 2/7,
    #        vhat = 1.5625/0.578125 = 100/37, sqrt = 10/sqrt(37) = 1.64398987305357289;
    #        step 0.1*(2/7)/1.65398987305357289 = 0.0172742463765394168
    ("adam", dict(lr=0.1, betas=(0.5, 0.75), eps=0.01), G_ADAM,
     [0.900497512437810945, 0.933665008291873964, 0.916390761915334547]),
    # Adam with L2 weight decay 0.5 (added to the gradient):
    #   t=1: g = 2 + 0.5 = 2.5; m = 1.25, v = 1.5625; mhat = 2.5, vhat = 6.25 (sqrt 2.5);
    #        step 0.1*2.5/2.51 = 0.0996015936254980080 -> w = 0.900398406374501992
    #   t=2: g = -2 + 0.450199203187250996 = -1.549800796812749004; m = 0.625 - 0.774900398406374502
    #        = -0.149900398406374502, v = 1.171875 + 0.600470627450357931 = 1.772345627450357931;
    #        mhat = m/0.75 = -0.199867197875166003, vhat = v/0.4375 = 4.051075719886532413,
    #        sqrt = 2.012728426759688912; step 0.1*mhat/2.022728426759688912 = -0.00988106931365687025
    ("adam", dict(lr=0.1, betas=(0.5, 0.75), eps=0.01, weight_decay=0.5), G_ADAM[:2],
     [0.900398406374501992, 0.910279475688158862]),
    # AdamW (Loshchilov & Hutter; torch.optim.AdamW): w *= 1 - lr*wd = 0.95 first, then the
    # Adam step on the unchanged gradient (the same steps as the plain Adam case above):
    #   t=1: 0.95 - 0.0995024875621890547 = 0.850497512437810945
    #   t=2: 0.95*0.850497512437810945 = 0.807972636815920398, + 0.0331674958540630182 = 0.841140132669983416
    #   t=3: 0.95*0.841140132669983416 = 0.799083126036484245, - 0.0172742463765394168 = 0.781808879659944829
    ("adamw", dict(lr=0.1, betas=(0.5, 0.75), eps=0.01, weight_decay=0.5), G_ADAM,
     [0.850497512437810945, 0.841140132669983416, 0.781808879659944829]),
]


@pytest.mark.parametrize("name, kw, grads, expected", HAND,
                         ids=[f"{n}-{i}" for i, (n, *_) in enumerate(HAND)])
def test_update_formulas_hand_worked(name, kw, grads, expected):
    """The weights after each step equal values worked out by hand (above) from the
    published formulas; float64 rounding only."""
    p = nn.Parameter(np.array([1.0]))
    opt = OURS[name]([p], **kw)
    got = []
    for g in grads:
        p.grad[...] = g
        opt.step()
        got.append(float(p.data[0]))
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_update_formulas_act_elementwise():
    """A parameter of several elements (and several parameters) updates each element as
    the one-element cases above: the same three SGD-with-momentum and Adam trajectories,
    scaled and with the sign flipped, side by side."""
    for name, kw, grads, expected in (HAND[1], HAND[6]):
        a = nn.Parameter(np.array([[1.0, -1.0], [1.0, -1.0]]))
        b = nn.Parameter(np.array([1.0]))
        opt = OURS[name]([a, b], **kw)
        for g, want in zip(grads, expected):
            a.grad[...] = [[g, -g], [g, -g]]
            b.grad[...] = g
            opt.step()
            np.testing.assert_allclose(a.data, [[want, -want], [want, -want]], rtol=1e-14)
            np.testing.assert_allclose(b.data, [want], rtol=1e-14)


def _small_net(seed=0):
    return nn.Sequential(
        nn.Conv2D(1, 3, 3, dtype=F64, seed=seed), nn.ReLU(dtype=F64), nn.MaxPool2D(2, dtype=F64),
        nn.Flatten(dtype=F64), nn.Linear(3 * 3 * 3, 4, dtype=F64, seed=seed + 1),
    )


@pytest.mark.parametrize("name, kw", [OPTIMS[2], OPTIMS[5], OPTIMS[7]], ids=["sgd", "adam", "adamw"])
def test_training_matches_torch(name, kw):
    """The same model, data and hyper-parameters give the same weights as torch.optim."""
    torch = pytest.importorskip("torch")
    net = _small_net()
    tnet = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(27, 4),
    ).double()
    with torch.no_grad():
        for p, tp in zip(net.parameters(), tnet.parameters()):
            tp.copy_(torch.tensor(p.data))
    opt = OURS[name](net.parameters(), **kw)
    topt = _torch_opt(torch, name, list(tnet.parameters()), kw)
    loss_fn = nn.SoftmaxCrossEntropy()
    rng = np.random.default_rng(0)
    net.input_grad = False
    for step in range(8):
        x = rng.standard_normal((6, 1, 8, 8))
        labels = rng.integers(0, 4, 6)
        opt.zero_grad()
        loss = loss_fn.forward(net.forward(x), labels)
        net.backward(loss_fn.backward())
        opt.step()
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tnet(torch.tensor(x)), torch.tensor(labels))
        tloss.backward()
        topt.step()
        np.testing.assert_allclose(loss, tloss.item(), rtol=1e-10)
    for p, tp in zip(net.parameters(), tnet.parameters()):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_schedules_match_torch():
    torch = pytest.importorskip("torch")
    for make, tmake in [
        (lambda o: optim.StepLR(o, step_size=3, gamma=0.5),
         lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
        (lambda o: optim.CosineLR(o, T_max=10, eta_min=0.001),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001)),
        (lambda o: optim.CosineLR(o, T_max=7),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7)),
    ]:
        opt = optim.SGD(_params(), lr=0.1, momentum=0.9)
        topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
        sched, tsched = make(opt), tmake(topt)
        for epoch in range(16):
            assert math.isclose(opt.lr, topt.param_groups[0]["lr"], rel_tol=1e-12, abs_tol=1e-15), epoch
            topt.step()
            tsched.step()
            sched.step()


def test_schedule_closed_forms():
    opt = optim.SGD(_params(), lr=0.8)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = [opt.lr] + [sched.step() for _ in range(6)]
    assert lrs == [0.8, 0.8, 0.4, 0.4, 0.2, 0.2, 0.1]
    assert sched.get_last_lr() == 0.1
    opt = optim.Adam(_params(), lr=1.0)
    sched = optim.CosineLR(opt, T_max=4, eta_min=0.2)
    lrs = [opt.lr] + [sched.step() for _ in range(4)]
    np.testing.assert_allclose(lrs, [1.0, 0.2 + 0.8 * (1 + math.cos(math.pi / 4)) / 2, 0.6,
                                     0.2 + 0.8 * (1 + math.cos(3 * math.pi / 4)) / 2, 0.2], rtol=1e-15)


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.1),
                                  lambda p: optim.Adam(p, weight_decay=0.1), lambda p: optim.AdamW(p)])
def test_frozen_parameters_not_updated(make):
    net = _small_net()
    net[0].freeze()
    before = net.state_dict()
    opt = make(net)  # a Module is accepted for its parameters
    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8))
    loss_fn = nn.SoftmaxCrossEntropy()
    for _ in range(3):
        opt.zero_grad()
        loss_fn.forward(net.forward(x), np.array([0, 1, 2, 3]))
        net.backward(loss_fn.backward())
        opt.step()
    after = net.state_dict()
    np.testing.assert_array_equal(after["0.weight"], before["0.weight"])
    np.testing.assert_array_equal(after["0.bias"], before["0.bias"])
    assert not np.array_equal(after["4.weight"], before["4.weight"])
    assert opt.state[0] == {} and opt.state[1] == {}
    # weight decay alone must not move a frozen parameter either
    net[0].weight.grad[...] = 1.0
    opt.step()
    np.testing.assert_array_equal(net[0].weight.data, before["0.weight"])


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
                                  lambda p: optim.Adam(p, lr=0.01), lambda p: optim.AdamW(p, lr=0.01)])
def test_checkpoint_resume(make):
    """Stopping, saving, restoring and continuing gives the same weights as not stopping."""

    def run(params, opt, sched, steps, start):
        for s in range(start, start + steps):
            for p, g in zip(params, _grads(params, s)):
                p.grad[...] = g
            opt.step()
            sched.step()

    params = _params()
    opt = make(params)
    sched = optim.StepLR(opt, 2, 0.5)
    run(params, opt, sched, 3, 0)
    saved_p = [p.data.copy() for p in params]
    saved_o, saved_s = opt.state_dict(), sched.state_dict()
    run(params, opt, sched, 4, 3)
    final = [p.data.copy() for p in params]

    params2 = [nn.Parameter(d.copy()) for d in saved_p]
    opt2 = make(params2)
    opt2.lr = 123.0
    sched2 = optim.StepLR(opt2, 2, 0.5)
    opt2.load_state_dict(saved_o)
    sched2.load_state_dict(saved_s)
    assert opt2.lr == saved_o["hyper"]["lr"] and opt2.step_count == 3
    run(params2, opt2, sched2, 4, 3)
    for a, b in zip(final, params2):
        np.testing.assert_array_equal(a, b.data)


def test_state_dict_is_a_copy_and_checked():
    params = _params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad[...] = 1.0
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"][...] = 99
    assert opt.state[0]["momentum_buffer"][0, 0] == 1.0
    with pytest.raises(ValueError, match="for a SGD optimiser, cannot load it into Adam"):
        optim.Adam(params).load_state_dict(sd)
    with pytest.raises(ValueError, match="state for 3 parameters, this optimiser has 2"):
        optim.SGD(params[:2], lr=0.1).load_state_dict(sd)
    other = _params(shapes=((4, 3), (4,), (2, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"state\[0\]\['momentum_buffer'\] has shape \(3, 4\)"):
        optim.SGD(other, lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="for a SGD schedule|for a StepLR"):
        optim.CosineLR(opt, 5).load_state_dict(optim.StepLR(opt, 2).state_dict())


def test_float32_parameters_stay_float32():
    params = [nn.Parameter(np.ones((2, 2), np.float32))]
    for opt in [optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.1), optim.Adam(params),
                optim.AdamW(params)]:
        params[0].grad[...] = 0.5
        opt.step()
        assert params[0].data.dtype == np.float32
        assert all(v.dtype == np.float32 for v in opt.state[0].values() if isinstance(v, np.ndarray))


def test_zero_grad_and_lr_attribute():
    params = _params()
    opt = optim.SGD(params, lr=0.1)
    for p in params:
        p.grad[...] = 1
    opt.lr = 0.5
    before = params[0].data.copy()
    opt.step()
    np.testing.assert_allclose(params[0].data, before - 0.5)
    opt.zero_grad()
    assert all(not p.grad.any() for p in params)
    assert "SGD(3 parameters, lr=0.5" in repr(opt)


@pytest.mark.parametrize("make, exc, msg", [
    (lambda p: optim.SGD(p, lr=-1), ValueError, "lr must be in"),
    (lambda p: optim.SGD(p, lr="0.1"), TypeError, "lr must be a real number"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), ValueError, "momentum must be in"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), ValueError, "weight_decay must be in"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be in"),
    (lambda p: optim.Adam(p, betas=0.9), ValueError, "betas must be a pair"),
    (lambda p: optim.AdamW(p, eps=-1e-8), ValueError, "eps must be in"),
    (lambda p: optim.SGD([], lr=0.1), ValueError, "params is empty"),
    (lambda p: optim.SGD([p[0].data], lr=0.1), TypeError, r"params\[0\] must be a fastconv.nn.Parameter"),
    (lambda p: optim.SGD([p[0], p[0]], lr=0.1), ValueError, "more than once"),
    (lambda p: optim.SGD(p[0], lr=0.1), TypeError, "got one Parameter"),
    (lambda p: optim.StepLR(p, 2), TypeError, "optimizer must be a fastconv.optim.Optimizer"),
    (lambda p: optim.StepLR(optim.SGD(p, lr=1), 0), ValueError, "step_size must be a positive int"),
    (lambda p: optim.CosineLR(optim.SGD(p, lr=1), 10, eta_min=-1), ValueError, "eta_min must be in"),
])
def test_argument_errors(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make(_params())
