"""The implementations timed for each case: fastconv, the NumPy baseline and PyTorch.

Each ``*_impls`` function returns argument-less callables on fixed random
float32 data, so a timer only has to call them. PyTorch is passed in as a
module (or None): it is imported in :mod:`fastconv.bench.env`, never here.
"""

from __future__ import annotations

import math

import numpy as np


from .. import _dispatch, functional, models, nn, optim
from .. import _numpy_baseline as npb
from .._args import ALGOS
from .cases import CONV_CASES, POOL_CASES, TRAIN_BATCH, TRAIN_CASES, TRAIN_LR, TRAIN_MOMENTUM, case_params

__all__ = ["conv_algos", "auto_algo", "algo_applies", "conv_impls", "pool_impls", "train_impls",
           "torch_model"]


def conv_algos():
    """fastconv's explicit convolution algorithms (``fastconv._args.ALGOS`` without "auto")."""
    return tuple(a for a in ALGOS if a != "auto")


def auto_algo(name, backward=False):
    """The algorithm fastconv's ``algo="auto"`` picks for convolution case ``name`` (float32,
    with the tuning file if any), for the forward pass or (``backward``) the backward passes
    (``"<a>(dw)+<b>(dx)"`` when the weight and data gradients take different ones)."""
    p = case_params(name)
    if not backward:
        return _dispatch.choose_algo("auto", p, False, np.float32)
    w = _dispatch.choose_algo("auto", p, "weight", np.float32)
    d = _dispatch.choose_algo("auto", p, "data", np.float32)
    return w if w == d else f"{w}(dw)+{d}(dx)"


def algo_applies(name, algo):
    """True when fastconv accepts ``algo`` for convolution case ``name`` (e.g. winograd needs
    3x3, stride 1): checked by an empty-batch call, which validates and returns at once."""
    N, C, H, W, K, R, S, stride, pad, groups = CONV_CASES[name]
    x = np.zeros((0, C, H, W), np.float32)
    w = np.zeros((K, C // groups, R, S), np.float32)
    try:
        functional.conv2d(x, w, None, stride, pad, 1, groups, algo=algo)
    except ValueError:
        return False
    return True


def conv_impls(name, torch=None, algos=("auto",)):
    """The callables timed for convolution case ``name``.

    Returns ``(info, impls)``: ``info`` holds the shape (with P, Q), ``flop_fwd``, ``auto`` and
    ``auto_backward`` (the algorithms ``algo="auto"`` picks for each pass); ``impls`` maps an
    implementation name to a pair ``(forward, forward_and_backward)`` of argument-less
    callables on fixed float32 data:
    ``"fastconv"`` (for ``algo="auto"``) or the algorithm's name for each of ``algos``,
    ``"numpy"`` and, when the ``torch`` module is given, ``"torch"``.
    """
    N, C, H, W, K, R, S, stride, pad, groups = CONV_CASES[name]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C // groups, R, S), dtype=np.float32)
    w *= np.float32(1.0 / math.sqrt(C // groups * R * S))
    b = rng.standard_normal(K, dtype=np.float32)
    y = functional.conv2d(x, w, b, stride, pad, 1, groups)
    P, Q = y.shape[2:]
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    kw = dict(stride=stride, padding=pad, dilation=1, groups=groups)
    info = {
        "shape": {"N": N, "C": C, "H": H, "W": W, "K": K, "R": R, "S": S,
                  "stride": stride, "pad": pad, "groups": groups, "P": P, "Q": Q},
        "flop_fwd": 2.0 * N * K * (C // groups) * R * S * P * Q,
        "auto": auto_algo(name),
        "auto_backward": auto_algo(name, backward=True),
    }

    def fc(algo):
        def fwd():
            functional.conv2d(x, w, b, algo=algo, **kw)

        def step():
            functional.conv2d(x, w, b, algo=algo, **kw)
            functional.conv2d_backward(dy, x, w, algo=algo, **kw)

        return fwd, step

    def nfwd():
        npb.conv2d_forward(x, w, b, **kw)

    def nstep():
        npb.conv2d_forward(x, w, b, **kw)
        npb.conv2d_backward(dy, x, w, **kw)

    impls = {("fastconv" if algo == "auto" else algo): fc(algo) for algo in algos}
    impls["numpy"] = (nfwd, nstep)
    if torch is not None:
        F = torch.nn.functional
        xt, wt, bt, dyt = (torch.from_numpy(a) for a in (x, w, b, dy))
        conv_bwd = torch.ops.aten.convolution_backward

        def tfwd():
            with torch.no_grad():
                F.conv2d(xt, wt, bt, stride, pad, 1, groups)

        def tstep():
            # The same work as fastconv's: forward, then dx, dw and db from dy in one call.
            with torch.no_grad():
                F.conv2d(xt, wt, bt, stride, pad, 1, groups)
                conv_bwd(dyt, xt, wt, [K], [stride, stride], [pad, pad], [1, 1], False, [0, 0],
                         groups, [True, True, True])

        impls["torch"] = (tfwd, tstep)
    return info, impls


def pool_impls(name, op, torch=None):
    """The callables timed for pooling case ``name`` with ``op`` ``"max"`` or ``"avg"``.

    Returns ``(info, impls)`` like :func:`conv_impls`: implementations ``"fastconv"``,
    ``"numpy"`` and (when ``torch`` is given) ``"torch"``, each a pair
    ``(forward, forward_and_backward)``. Max pooling's forward also produces the indices the
    backward needs, in every implementation.
    """
    if op not in ("max", "avg"):
        raise ValueError(f"op must be 'max' or 'avg', got {op!r}")
    N, C, H, W, k, s, p = POOL_CASES[name]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    y = functional.max_pool2d(x, k, s, p)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    info = {"shape": {"N": N, "C": C, "H": H, "W": W, "kernel": k, "stride": s, "pad": p,
                      "P": y.shape[2], "Q": y.shape[3]}}
    if op == "max":
        def ffwd():
            functional.max_pool2d(x, k, s, p, return_indices=True)

        def fstep():
            _, idx = functional.max_pool2d(x, k, s, p, return_indices=True)
            functional.max_pool2d_backward(dy, idx, x.shape)

        def nfwd():
            npb.max_pool2d_forward(x, k, s, p, return_indices=True)

        def nstep():
            _, arg = npb.max_pool2d_forward(x, k, s, p, return_indices=True)
            npb.max_pool2d_backward(dy, arg, x.shape, k, s, p)
    else:
        def ffwd():
            functional.avg_pool2d(x, k, s, p)

        def fstep():
            functional.avg_pool2d(x, k, s, p)
            functional.avg_pool2d_backward(dy, x.shape, k, s, p)

        def nfwd():
            npb.avg_pool2d_forward(x, k, s, p)

        def nstep():
            npb.avg_pool2d_forward(x, k, s, p)
            npb.avg_pool2d_backward(dy, x.shape, k, s, p)

    impls = {"fastconv": (ffwd, fstep), "numpy": (nfwd, nstep)}
    if torch is not None:
        F = torch.nn.functional
        aten = torch.ops.aten
        xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)
        if op == "max":
            def tfwd():
                with torch.no_grad():
                    F.max_pool2d(xt, k, s, p, return_indices=True)

            def tstep():
                with torch.no_grad():
                    _, idx = F.max_pool2d(xt, k, s, p, return_indices=True)
                    aten.max_pool2d_with_indices_backward(dyt, xt, [k, k], [s, s], [p, p], [1, 1],
                                                          False, idx)
        else:
            def tfwd():
                with torch.no_grad():
                    F.avg_pool2d(xt, k, s, p)

            def tstep():
                with torch.no_grad():
                    F.avg_pool2d(xt, k, s, p)
                    aten.avg_pool2d_backward(dyt, xt, [k, k], [s, s], [p, p], False, True, None)

        impls["torch"] = (tfwd, tstep)
    return info, impls


def _fastconv_trainer(name, x, labels):
    """One training step of fastconv's model ``name`` as a callable."""
    model = models.get_model(name, dtype=np.float32, seed=0)
    model.train()
    # No gradient with respect to the batch itself: Trainer.fit does the same, and
    # PyTorch's step does not compute one either (its input does not require grad).
    model.input_grad = False
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = optim.SGD(model.parameters(), lr=TRAIN_LR, momentum=TRAIN_MOMENTUM)

    def step():
        opt.zero_grad()
        loss_fn.forward(model.forward(x), labels)
        model.backward(loss_fn.backward())
        opt.step()

    return step


def torch_model(torch, name):
    """PyTorch's twin of fastconv's model ``name`` (``lenet5``, ``vgg_small`` or
    ``resnet_small``)."""
    tnn = torch.nn
    if name == "lenet5":
        return tnn.Sequential(
            tnn.Conv2d(1, 20, 5), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(20, 50, 5), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Flatten(), tnn.Linear(800, 500), tnn.ReLU(), tnn.Linear(500, 10),
        )
    if name == "vgg_small":
        return tnn.Sequential(
            tnn.Conv2d(3, 32, 3, padding=1), tnn.ReLU(),
            tnn.Conv2d(32, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(),
            tnn.Conv2d(64, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Flatten(), tnn.Linear(4096, 256), tnn.ReLU(), tnn.Linear(256, 10),
        )
    if name == "resnet_small":
        def block(cin, cout, stride):
            body = tnn.Sequential(
                tnn.Conv2d(cin, cout, 3, stride, 1, bias=False), tnn.BatchNorm2d(cout), tnn.ReLU(),
                tnn.Conv2d(cout, cout, 3, 1, 1, bias=False), tnn.BatchNorm2d(cout))
            short = None
            if stride != 1 or cin != cout:
                short = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False),
                                       tnn.BatchNorm2d(cout))
            return _TorchResidual(tnn, body, short)

        return tnn.Sequential(
            tnn.Conv2d(3, 16, 3, padding=1, bias=False), tnn.BatchNorm2d(16), tnn.ReLU(),
            block(16, 16, 1), block(16, 32, 2), block(32, 32, 1),
            tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(32, 10),
        )
    raise ValueError(f"no torch model for {name!r}")


def _TorchResidual(tnn, body, short):
    """relu(body(x) + shortcut(x)) as a torch module (fastconv's Residual + ReLU)."""
    class Residual(tnn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.short = body, short

        def forward(self, x):
            s = x if self.short is None else self.short(x)
            return (self.body(x) + s).relu()

    return Residual()


def _torch_trainer(torch, name, x, labels):
    torch.manual_seed(0)
    model = torch_model(torch, name).float()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=TRAIN_LR, momentum=TRAIN_MOMENTUM)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(labels)
    loss_fn = torch.nn.functional.cross_entropy

    def step():
        opt.zero_grad()
        loss_fn(model(xt), yt).backward()
        opt.step()

    return step


def train_impls(name, torch=None):
    """The callables timed for training case ``name``: one step on a fixed random batch.

    Returns ``(impls, notes)``: ``impls`` maps ``"fastconv"`` and ``"torch"`` (when ``torch``
    is given) to an argument-less callable doing one SGD-with-momentum step (zero_grad,
    forward, softmax cross-entropy, backward, update; neither computes a gradient for the
    batch itself, as ``Trainer.fit`` does not); ``notes`` lists why an implementation is
    missing.
    """
    shape, classes = TRAIN_CASES[name]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((TRAIN_BATCH,) + shape, dtype=np.float32)
    labels = rng.integers(0, classes, TRAIN_BATCH).astype(np.int64)
    impls, notes = {"fastconv": _fastconv_trainer(name, x, labels)}, []
    if torch is not None:
        impls["torch"] = _torch_trainer(torch, name, x, labels)
    else:
        notes.append("torch not importable")
    return impls, notes
