"""Module and Parameter: the base of the layer API.

There is no autograd graph. Each layer's ``forward`` caches what its own
``backward`` needs, and ``backward(dy)`` returns the gradient of the input and
accumulates the gradients of the layer's parameters into ``Parameter.grad``.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .._args import _FLOAT_DTYPES, as_dtype, as_float, as_int, make_rng, spawn_seeds  # noqa: F401

__all__ = ["Parameter", "Module", "fresh_output", "inplace_forward"]


# ---------------------------------------------------------------- helpers


def _dtype_name(dt):
    return np.dtype(dt).name


# ---------------------------------------------------------------- in-place inference


def fresh_output(module):
    """True when ``module.forward`` returns a new array that neither the layer nor anything
    it calls keeps, so the next layer may overwrite it. A class vouches for its own
    ``forward`` with ``_fresh_forward = forward`` in its body; a subclass that
    overrides ``forward``, or an instance whose ``forward`` was replaced, is not vouched for."""
    cls = type(module)
    return cls._fresh_forward is cls.forward and "forward" not in module.__dict__


def inplace_forward(module):
    """The layer's ``_forward_inplace`` (``forward(x)`` written over ``x``, with the same
    result bit for bit and the same cache for backward) when its class offers one for its
    own ``forward`` (``_inplace_of = forward`` in the class body, as
    :func:`fresh_output`); else None. The containers call it in eval mode, on the native
    backend, for an array that :func:`fresh_output` says no one else holds."""
    cls = type(module)
    if cls._inplace_of is not cls.forward or "forward" in module.__dict__:
        return None
    return module._forward_inplace


# ---------------------------------------------------------------- Parameter


class Parameter:
    """A trainable array: ``.data`` and its gradient ``.grad`` (same shape and dtype).

    ``.grad`` starts at zero and accumulates over ``backward`` calls until
    ``zero_grad()``. A parameter with ``requires_grad`` False (see
    :meth:`Module.freeze`) gets no gradient and is skipped by the optimisers.
    """

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data, requires_grad=True):
        if not isinstance(data, np.ndarray):
            raise TypeError(f"Parameter data must be a numpy.ndarray, got {type(data).__name__}")
        as_dtype(data.dtype, "Parameter data dtype")
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)
        self.requires_grad = bool(requires_grad)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    def zero_grad(self):
        self.grad[...] = 0

    def accumulate(self, g):
        """Add ``g`` to ``.grad`` (nothing happens when the parameter is frozen)."""
        if self.requires_grad:
            self.grad += g

    def __repr__(self):
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}{frozen})"


# ---------------------------------------------------------------- Module


class Module:
    """Base class of every layer and network.

    Subclasses implement ``forward(x)`` (caching what ``backward`` needs) and
    ``backward(dy)``, which returns the gradient of the loss with respect to
    the input and *adds* the parameter gradients into ``Parameter.grad``
    (gradients accumulate, as in PyTorch, until :meth:`zero_grad`). Calling
    ``backward`` before ``forward`` is a RuntimeError. ``module(x)`` is
    ``module.forward(x)``.

    Attributes that are :class:`Parameter` or :class:`Module` instances are
    registered automatically (in assignment order) and found by
    :meth:`parameters`, :meth:`state_dict`, :meth:`train` and the others.
    Non-trainable state that belongs in checkpoints (BatchNorm's running
    statistics) is registered with :meth:`register_buffer`.

    ``dtype`` (float32 or float64): the dtype of the parameters and of the
    inputs the layer accepts; an input of another dtype is a TypeError naming
    the layer (fastconv never mixes dtypes silently).

    ``input_grad`` (default True): whether ``backward`` must compute the
    gradient of the input. When False, ``backward`` still accumulates the
    parameter gradients but skips the input gradient and returns None. The
    first layer of a network never needs it (nothing before it learns), so a
    network sets it False on its first layer: :class:`Sequential` passes its own
    ``input_grad`` to its first child at backward time, and in training mode also at
    forward time (and to later children only when no earlier child has a trainable
    parameter), and the
    trainer, like the builders in :mod:`fastconv.models`, sets
    ``model.input_grad = False`` on the whole network. Set it back to True to
    get the gradient of the network's input (saliency maps, gradient checks).
    """

    # what fresh_output / inplace_forward look for; None: not vouched for (a class
    # default, so the containers' eval loop finds it without a failing lookup)
    _fresh_forward = None
    _inplace_of = None

    def __init__(self, dtype=np.float32, seed=None):
        d = self.__dict__
        d["_params"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_modules"] = OrderedDict()
        d["training"] = True
        d["input_grad"] = True
        d["dtype"] = as_dtype(dtype)
        d["seed"] = seed

    # -- registration ------------------------------------------------------

    def _registry(self):
        d = self.__dict__
        if "_params" not in d:
            raise RuntimeError(
                f"{type(self).__name__}.__init__ must call super().__init__() "
                "before assigning parameters or sub-modules"
            )
        return d["_params"], d["_buffers"], d["_modules"]

    def __setattr__(self, name, value):
        d = self.__dict__
        if "_params" in d and not isinstance(value, (Parameter, Module)):
            # the common case (a layer caching an array, a shape, None), without the
            # general path's calls: the same steps as its last two branches below
            buffers = d["_buffers"]
            if name in buffers:
                if not isinstance(value, np.ndarray):
                    raise TypeError(f"buffer {name!r} must be a numpy.ndarray, got {type(value).__name__}")
                buffers[name] = value
            else:
                params, modules = d["_params"], d["_modules"]
                if name in params:
                    del params[name]
                if name in modules:
                    del modules[name]
            object.__setattr__(self, name, value)
            return
        params, buffers, modules = self._registry()
        if isinstance(value, Parameter):
            buffers.pop(name, None)
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in buffers:
            if not isinstance(value, np.ndarray):
                raise TypeError(f"buffer {name!r} must be a numpy.ndarray, got {type(value).__name__}")
            buffers[name] = value
        else:
            params.pop(name, None)
            modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        params, buffers, modules = self._registry()
        params.pop(name, None)
        buffers.pop(name, None)
        modules.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name, array):
        """Register a non-trainable array saved by :meth:`state_dict` (e.g. running statistics)."""
        if not isinstance(array, np.ndarray):
            raise TypeError(f"buffer {name!r} must be a numpy.ndarray, got {type(array).__name__}")
        params, buffers, modules = self._registry()
        params.pop(name, None)
        modules.pop(name, None)
        buffers[name] = array
        object.__setattr__(self, name, array)

    def add_module(self, name, module):
        """Register ``module`` as a child under ``name`` (which need not be an identifier)."""
        if not isinstance(module, Module):
            raise TypeError(f"child {name!r} must be a fastconv.nn.Module, got {type(module).__name__}")
        params, buffers, modules = self._registry()
        params.pop(name, None)
        buffers.pop(name, None)
        modules[str(name)] = module
        object.__setattr__(self, str(name), module)

    # -- traversal ---------------------------------------------------------

    def children(self):
        """The direct sub-modules, in registration order."""
        return iter(list(self._modules.values()))

    def named_children(self):
        return iter(list(self._modules.items()))

    def named_modules(self, prefix=""):
        """(name, module) for this module and every descendant, depth first, each once."""
        seen = set()
        out = []

        def visit(m, pre):
            if id(m) in seen:
                return
            seen.add(id(m))
            out.append((pre, m))
            for n, c in m._modules.items():
                visit(c, f"{pre}.{n}" if pre else n)

        visit(self, prefix)
        return iter(out)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) for every parameter, in a fixed order, each once."""
        seen = set()
        out = []
        for mname, m in self.named_modules(prefix):
            for pname, p in m._params.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                out.append((f"{mname}.{pname}" if mname else pname, p))
        return iter(out)

    def parameters(self):
        """Every Parameter of this module and its descendants, in a fixed order, each once."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        seen = set()
        out = []
        for mname, m in self.named_modules(prefix):
            for bname, b in m._buffers.items():
                if id(b) in seen:
                    continue
                seen.add(id(b))
                out.append((f"{mname}.{bname}" if mname else bname, b))
        return iter(out)

    def num_parameters(self, trainable_only=False):
        """Total number of scalar parameters (only unfrozen ones if ``trainable_only``)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    def has_trainable(self):
        """True when some parameter of this module has ``requires_grad``."""
        stack, seen = [self], set()
        while stack:
            m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            for p in m._params.values():
                if p.requires_grad:
                    return True
            stack.extend(m._modules.values())
        return False

    # -- modes -------------------------------------------------------------

    def train(self, mode=True):
        """Set training mode (Dropout active, BatchNorm uses batch statistics) recursively."""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self):
        """Set evaluation mode (Dropout off, BatchNorm uses running statistics) recursively."""
        return self.train(False)

    def freeze(self):
        """Mark every parameter as not trainable: no gradient, optimisers skip it."""
        for p in self.parameters():
            p.requires_grad = False
        return self

    def unfreeze(self):
        """Make every parameter trainable again."""
        for p in self.parameters():
            p.requires_grad = True
        return self

    def zero_grad(self):
        """Set the gradient of every parameter to zero."""
        for p in self.parameters():
            p.grad[...] = 0

    def to(self, dtype):
        """Convert every parameter and floating buffer to ``dtype`` (gradients reset); returns self."""
        dt = as_dtype(dtype)
        for m in self.modules():
            m.__dict__["dtype"] = dt
            for p in m._params.values():
                if p.data.dtype != dt:
                    p.data = p.data.astype(dt)
                    p.grad = np.zeros_like(p.data)
            for name, b in list(m._buffers.items()):
                if b.dtype.kind == "f" and b.dtype != dt:
                    m.register_buffer(name, b.astype(dt))
            m._on_dtype_change()
        return self

    def _on_dtype_change(self):
        """Hook for subclasses holding dtype-dependent cached values."""

    def reset_parameters(self, seed=None):
        """Re-initialise the parameters (and random state) from ``seed``.

        A leaf layer draws its own; a container passes a derived seed to each
        child, so the same seed always rebuilds the same network.
        """
        kids = list(self._modules.values())
        for child, s in zip(kids, spawn_seeds(seed, len(kids))):
            child.reset_parameters(s)
        return self

    # -- checkpoints -------------------------------------------------------

    def state_dict(self):
        """Ordered dict: dotted name -> copy of every parameter and buffer."""
        out = OrderedDict()
        for mname, m in self.named_modules():
            for name, p in m._params.items():
                key = f"{mname}.{name}" if mname else name
                if key not in out:
                    out[key] = p.data.copy()
            for name, b in m._buffers.items():
                key = f"{mname}.{name}" if mname else name
                if key not in out:
                    out[key] = b.copy()
        return out

    def _state_targets(self):
        """dotted name -> (owner module, attribute name, kind)."""
        out = OrderedDict()
        for mname, m in self.named_modules():
            for name in m._params:
                out.setdefault(f"{mname}.{name}" if mname else name, (m, name, "parameter"))
            for name in m._buffers:
                out.setdefault(f"{mname}.{name}" if mname else name, (m, name, "buffer"))
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy the arrays of ``state_dict`` into this module's parameters and buffers.

        Every key, shape and dtype is checked before anything is written, so a
        failed load leaves the module unchanged. With ``strict`` (default),
        missing and unexpected keys are a KeyError; otherwise they are
        skipped. Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"state_dict must be a mapping of name -> array, got {type(state_dict).__name__}")
        targets = self._state_targets()
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise KeyError(f"load_state_dict into {type(self).__name__}: " + "; ".join(parts))
        plan = []
        for key, (m, name, kind) in targets.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            cur = m._params[name].data if kind == "parameter" else m._buffers[name]
            if not isinstance(value, np.ndarray):
                value = np.asarray(value)
            if value.shape != cur.shape:
                raise ValueError(
                    f"state_dict[{key!r}] has shape {value.shape}, but the {kind} {key!r} "
                    f"of this model has shape {cur.shape}"
                )
            if value.dtype != cur.dtype:
                raise TypeError(
                    f"state_dict[{key!r}] has dtype {value.dtype}, but the {kind} {key!r} "
                    f"of this model has dtype {cur.dtype}; convert the model with .to(...) "
                    "or the array with .astype(...)"
                )
            plan.append((cur, value))
        for cur, value in plan:
            cur[...] = value
        return missing, unexpected

    # -- forward / backward ------------------------------------------------

    def forward(self, x):
        """Compute the output from x, caching what :meth:`backward` needs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def backward(self, dy):
        """Given dL/dy, accumulate the parameters' gradients into their ``.grad`` and
        return dL/dx (None when no input gradient is needed)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _keep(self, **values):
        """Set the plain attributes a forward keeps for its backward (arrays, shapes,
        None) in one step, past :meth:`__setattr__`'s registry checks: for a layer's own
        cache names only, never a parameter, buffer or sub-module. It runs on every
        forward, where those checks cost more than the layer's arithmetic on small inputs."""
        self.__dict__.update(values)

    def _check_input(self, x, ndim=None, channels=None, what="x"):
        """Validate a forward input: ndarray, this layer's dtype, ndim, channel count."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self._short()} expects a numpy.ndarray input, got {type(x).__name__}")
        if x.dtype != self.dtype:
            dn = _dtype_name(self.dtype)
            raise TypeError(
                f"{self._short()} expects {dn} input, got {x.dtype}: convert it with "
                f"{what}.astype(numpy.{dn}) or build the layer with dtype=numpy.{_dtype_name(x.dtype)}"
                if x.dtype in _FLOAT_DTYPES
                else f"{self._short()} expects {dn} input, got {x.dtype}: convert it with "
                f"{what}.astype(numpy.{dn})"
            )
        if ndim is not None:
            ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
            if x.ndim not in ndims:
                want = " or ".join(f"{n}-d" for n in ndims)
                raise ValueError(f"{self._short()} expects a {want} input, got shape {x.shape}")
        if channels is not None and x.shape[1] != channels:
            raise ValueError(
                f"{self._short()} expects {channels} input channels (axis 1), got shape {x.shape}"
            )
        return x

    def _check_grad(self, dy, shape, what="dy"):
        """Validate the gradient given to backward against the forward output's shape."""
        if not isinstance(dy, np.ndarray):
            raise TypeError(f"{self._short()}.backward expects a numpy.ndarray, got {type(dy).__name__}")
        if dy.dtype != self.dtype:
            raise TypeError(f"{self._short()}.backward expects {_dtype_name(self.dtype)} {what}, got {dy.dtype}")
        if tuple(dy.shape) != tuple(shape):
            raise ValueError(
                f"{self._short()}.backward: {what} must have the forward output's shape {tuple(shape)}, "
                f"got {dy.shape}"
            )
        return dy

    def _no_forward(self):
        return RuntimeError(
            f"{self._short()}.backward() called before forward(): run forward on a batch first"
        )

    # -- printing ----------------------------------------------------------

    def extra_repr(self):
        """The arguments shown inside the parentheses of ``repr``."""
        return ""

    def _dtype_repr(self):
        return "" if self.dtype == np.float32 else f"dtype={_dtype_name(self.dtype)}"

    def _args_repr(self):
        parts = [s for s in (self.extra_repr(), self._dtype_repr()) if s]
        return ", ".join(parts)

    def _short(self):
        return f"{type(self).__name__}({self._args_repr()})"

    def __repr__(self):
        if not self._modules:
            return self._short()
        lines = [f"{type(self).__name__}("]
        args = self._args_repr()
        if args:
            lines.append(f"  {args}")
        for name, child in self._modules.items():
            sub = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        lines.append(")")
        return "\n".join(lines)
