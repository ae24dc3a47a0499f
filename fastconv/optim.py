"""Optimisers (SGD, Adam, AdamW) and learning-rate schedules (StepLR, CosineLR).

The update formulas are PyTorch's (``torch.optim``, single-tensor path), so
the same model, data and hyper-parameters give the same weights. Parameters
whose ``requires_grad`` is False (frozen, see :meth:`fastconv.nn.Module.freeze`)
are skipped. Updates are made in place on ``Parameter.data``.

Typical loop::

    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = StepLR(opt, step_size=10, gamma=0.1)
    for epoch in range(epochs):
        for x, y in batches:
            opt.zero_grad()
            loss = loss_fn.forward(model.forward(x), y)
            model.backward(loss_fn.backward())
            opt.step()
        sched.step()

``state_dict()`` / ``load_state_dict()`` of optimisers and schedules hold
everything needed to resume (learning rate, hyper-parameters, per-parameter
step counts, momentum buffers, Adam moments, the schedule's epoch counter);
they are plain dicts of Python numbers, strings, lists and NumPy arrays.
"""

from __future__ import annotations

import math

import numpy as np

from ._args import as_float, as_int
from ._kernels import sgd_step
from ._runtime import kernel_threads
from .functional_prepared import native_inplace_ok
from .nn.module import Module, Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "CosineLR"]


def _param_list(params):
    if isinstance(params, Module):
        params = params.parameters()
    if isinstance(params, Parameter):
        raise TypeError("params must be an iterable of Parameter (e.g. model.parameters()), got one Parameter")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(
            f"params must be an iterable of Parameter (e.g. model.parameters()), got {type(params).__name__}"
        ) from None
    if not params:
        raise ValueError("params is empty: the optimiser has nothing to update")
    seen = set()
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(
                f"params[{i}] must be a fastconv.nn.Parameter, got {type(p).__name__}; "
                "pass model.parameters()"
            )
        if id(p) in seen:
            raise ValueError(f"params[{i}] appears more than once in params")
        seen.add(id(p))
    return params


class Optimizer:
    """Base class: holds the parameters, the learning rate ``lr`` and per-parameter state.

    Subclasses list their hyper-parameter names in ``_hyper`` and implement
    ``_update(p, state)`` for one unfrozen parameter.
    """

    _hyper = ("lr",)

    def __init__(self, params, lr):
        self.params = _param_list(params)
        self.lr = as_float(lr, "lr", 0.0)
        self.initial_lr = self.lr
        self.state = [{} for _ in self.params]
        self.step_count = 0

    def zero_grad(self):
        """Set every parameter's gradient to zero."""
        for p in self.params:
            p.grad[...] = 0

    def step(self):
        """Update every parameter that has ``requires_grad`` from its ``.grad``."""
        lr = as_float(self.lr, "lr", 0.0)
        self.step_count += 1
        for p, st in zip(self.params, self.state):
            if p.requires_grad:
                self._update(p, st, lr)
                if getattr(p, "mask", None) is not None:   # pruned weights stay zero (fastconv.prune)
                    p.data *= p.mask

    def _update(self, p, state, lr):
        raise NotImplementedError

    # -- checkpoints -------------------------------------------------------

    def state_dict(self):
        """A copy of the optimiser's hyper-parameters, counters and per-parameter state."""
        return {
            "type": type(self).__name__,
            "hyper": {k: getattr(self, k) for k in self._hyper},
            "initial_lr": self.initial_lr,
            "step_count": self.step_count,
            "state": [
                {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
                for st in self.state
            ],
        }

    def load_state_dict(self, state_dict):
        """Restore a :meth:`state_dict` (of the same optimiser type over the same parameters)."""
        if not isinstance(state_dict, dict) or "state" not in state_dict:
            raise TypeError("state_dict must be a dict made by Optimizer.state_dict()")
        kind = state_dict.get("type")
        if kind != type(self).__name__:
            raise ValueError(f"state_dict is for a {kind} optimiser, cannot load it into {type(self).__name__}")
        states = state_dict["state"]
        if len(states) != len(self.params):
            raise ValueError(
                f"state_dict holds state for {len(states)} parameters, this optimiser has {len(self.params)}"
            )
        for i, (p, st) in enumerate(zip(self.params, states)):
            for k, v in st.items():
                if isinstance(v, np.ndarray) and (v.shape != p.shape or v.dtype != p.dtype):
                    raise ValueError(
                        f"state_dict state[{i}][{k!r}] has shape {v.shape} and dtype {v.dtype}, "
                        f"but parameter {i} has shape {p.shape} and dtype {p.dtype}"
                    )
        for k, v in state_dict.get("hyper", {}).items():
            if k in self._hyper:
                setattr(self, k, v)
        self.initial_lr = state_dict.get("initial_lr", self.lr)
        self.step_count = int(state_dict.get("step_count", 0))
        self.state = [
            {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()} for st in states
        ]

    def __repr__(self):
        hyper = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._hyper)
        return f"{type(self).__name__}({len(self.params)} parameters, {hyper})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay.

    As ``torch.optim.SGD``: ``g = grad + weight_decay * w``; with momentum,
    ``buf = g`` on a parameter's first step and ``buf = momentum * buf + (1 - dampening) * g``
    afterwards, then ``g = g + momentum * buf`` (Nesterov) or ``g = buf``; finally
    ``w -= lr * g``.
    """

    _hyper = ("lr", "momentum", "dampening", "nesterov", "weight_decay")

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0, dampening=0.0):
        super().__init__(params, lr)
        self.momentum = as_float(momentum, "momentum", 0.0)
        self.dampening = as_float(dampening, "dampening", 0.0, 1.0)
        self.weight_decay = as_float(weight_decay, "weight_decay", 0.0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening = 0")

    def _update(self, p, st, lr):
        if self._fused_update(p, st, lr):
            return
        g = p.grad
        if self.weight_decay != 0:
            g = g + self.weight_decay * p.data
        if self.momentum != 0:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = np.array(g, copy=True)
            else:
                buf *= self.momentum
                if self.dampening == 0:
                    buf += g
                else:
                    buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= lr * g


    def _fused_update(self, p, st, lr):
        """The update of :meth:`_update` as one native pass over the parameter (and its
        momentum buffer), bitwise the NumPy lines there (each product and sum rounded to the
        parameter's type, in the same order); False, with nothing done, when dampening or
        Nesterov momentum is set or the arrays are not C-contiguous float32 / float64 of one
        type and shape (then the NumPy lines run). One pass instead of four: LeNet-5's
        431,080 parameters take about a third of the time."""
        if self.dampening != 0 or self.nesterov:
            return False
        data, grad = p.data, p.grad
        if not (_fusable(data, data) and _fusable(grad, data)):
            return False
        buf, first = None, False
        if self.momentum != 0:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf, first = np.empty_like(data, order="C"), True
            elif not _fusable(buf, data):
                return False
        sgd_step(data, grad, buf, lr, self.momentum, self.weight_decay, first,
                 kernel_threads(data.size))
        if first:
            st["momentum_buffer"] = buf
        return True


def _fusable(a, like):
    """a can go to the fused update beside the parameter array ``like``: an ndarray of its
    shape and dtype that the native kernels may write in place."""
    return (isinstance(a, np.ndarray) and a.dtype == like.dtype and a.shape == like.shape
            and native_inplace_ok(a))


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (L2 ``weight_decay`` added to the gradient).

    Per parameter: ``m += (1 - b1) (g - m)``, ``v = b2 v + (1 - b2) g^2``,
    ``w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``, with ``t``
    the parameter's own step count.
    """

    _hyper = ("lr", "betas", "eps", "weight_decay")
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (as_float(betas[0], "betas[0]", 0.0, 1.0, high_open=True),
                      as_float(betas[1], "betas[1]", 0.0, 1.0, high_open=True))
        self.eps = as_float(eps, "eps", 0.0)
        self.weight_decay = as_float(weight_decay, "weight_decay", 0.0)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.betas = tuple(self.betas)

    def _update(self, p, st, lr):
        b1, b2 = self.betas
        if not st:
            st["step"] = 0
            st["exp_avg"] = np.zeros_like(p.data)
            st["exp_avg_sq"] = np.zeros_like(p.data)
        st["step"] += 1
        t = st["step"]
        m, v = st["exp_avg"], st["exp_avg_sq"]
        g = p.grad
        if self.weight_decay != 0:
            if self._decoupled:
                p.data *= 1 - lr * self.weight_decay
            else:
                g = g + self.weight_decay * p.data
        m += (1 - b1) * (g - m)
        v *= b2
        v += (1 - b2) * (g * g)
        step_size = lr / (1 - b1**t)
        denom = np.sqrt(v)
        denom /= math.sqrt(1 - b2**t)
        denom += self.eps
        p.data -= step_size * (m / denom)


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: Adam with decoupled weight decay ``w *= 1 - lr * wd``
    applied before the Adam step (default ``weight_decay=0.01``).
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


# ---------------------------------------------------------------- schedules


class LRScheduler:
    """Base class: changes ``optimizer.lr`` once per :meth:`step` (call it once per epoch)."""

    _hyper = ()

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a fastconv.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0

    def step(self):
        """Advance one epoch and set the optimiser's learning rate."""
        self.last_epoch += 1
        self.optimizer.lr = self._lr()
        return self.optimizer.lr

    def get_last_lr(self):
        return self.optimizer.lr

    def _lr(self):
        raise NotImplementedError

    def state_dict(self):
        out = {"type": type(self).__name__, "base_lr": self.base_lr, "last_epoch": self.last_epoch}
        out.update({k: getattr(self, k) for k in self._hyper})
        return out

    def load_state_dict(self, state_dict):
        if not isinstance(state_dict, dict) or state_dict.get("type") != type(self).__name__:
            got = state_dict.get("type") if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"state_dict is for a {got} schedule, cannot load it into {type(self).__name__}")
        self.base_lr = float(state_dict["base_lr"])
        self.last_epoch = int(state_dict["last_epoch"])
        for k in self._hyper:
            if k in state_dict:
                setattr(self, k, state_dict[k])

    def __repr__(self):
        hyper = "".join(f", {k}={getattr(self, k)!r}" for k in self._hyper)
        return f"{type(self).__name__}(base_lr={self.base_lr!r}{hyper}, last_epoch={self.last_epoch})"


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs (as ``torch.optim.lr_scheduler.StepLR``)."""

    _hyper = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.step_size = as_int(step_size, "step_size")
        self.gamma = as_float(gamma, "gamma", 0.0)

    def _lr(self):
        # PyTorch's chainable form: scale the current rate at each multiple of step_size.
        lr = self.optimizer.lr
        if self.last_epoch % self.step_size == 0:
            lr = lr * self.gamma
        return lr


class CosineLR(LRScheduler):
    """Cosine annealing from the initial rate to ``eta_min`` over ``T_max`` epochs:
    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``
    (the closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR``).
    """

    _hyper = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        self.T_max = as_int(T_max, "T_max")
        self.eta_min = as_float(eta_min, "eta_min", 0.0)

    def _lr(self):
        cos = math.cos(math.pi * self.last_epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + cos) / 2
