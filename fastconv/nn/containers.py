"""Containers: Sequential, Residual (skip connection) and Concat (parallel branches).

A container's ``dtype`` is its children's: with ``dtype=None`` (default) it is
taken from them (children of different dtypes are a TypeError); with a dtype
given, every child is converted to it. With ``seed`` given, every child is
re-initialised from a seed derived from it (see :meth:`Module.reset_parameters`),
so the same seed always gives the same network.
"""

from __future__ import annotations

import numpy as np

from .._args import as_dtype, as_int
from .._backend import plain_native
from .activation import ReLU
from .module import Module, fresh_output, inplace_forward
from .pooling import MaxPool2D

__all__ = ["Sequential", "Residual", "Concat"]


def _container_dtype(kind, named, dtype):
    for name, m in named:
        if not isinstance(m, Module):
            raise TypeError(f"{kind} {name} must be a fastconv.nn.Module, got {type(m).__name__}")
    if dtype is not None:
        return as_dtype(dtype)
    dtypes = {m.dtype for _, m in named}
    if len(dtypes) > 1:
        listing = ", ".join(f"{name} {type(m).__name__}: {m.dtype}" for name, m in named)
        raise TypeError(
            f"{kind}s have different dtypes ({listing}); build every layer with the same "
            "dtype= or pass dtype= to the container to convert them all"
        )
    return dtypes.pop() if dtypes else np.dtype(np.float32)


def _runs_backward(m):
    return m.input_grad or m.has_trainable()


def _pool_first(a, b):
    """Whether children ``a, b`` are a ReLU then a MaxPool2D, which a training forward runs
    as the pool then the ReLU: max and ReLU commute, so the output is the same array, and
    the ReLU then touches a quarter of the values (for 2x2 windows) forward and backward.

    The gradients are the same bits too. A window whose maximum is > 0 has the same first
    maximum before and after the ReLU, and the ReLU passes its gradient; a window whose
    maximum is <= 0 (or NaN) sends none in either order. Each input element then sums the
    same gradients in the same window order. Only these exact classes: a subclass may
    compute something else."""
    return type(a) is ReLU and type(b) is MaxPool2D


class Sequential(Module):
    """Layers applied one after the other; children are named "0", "1", ...

    ``Sequential(a, b, c)`` or ``Sequential([a, b, c])``. Its ``input_grad``
    goes to its first child; a later child computes its input gradient only
    when an earlier child (or the input) needs a gradient, and a child with
    nothing to compute (no input gradient needed, no trainable parameter) is
    skipped in ``backward``.
    """

    def __init__(self, *layers, dtype=None, seed=None):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        dt = _container_dtype("layer", [(str(i), m) for i, m in enumerate(layers)], dtype)
        super().__init__(dt, seed)
        for i, layer in enumerate(layers):
            self.add_module(str(i), layer)
        if dtype is not None:
            self.to(dt)
        if seed is not None:
            self.reset_parameters(seed)
        self._ran_forward = False

    # whether the last forward was a training one, which ran every ReLU, MaxPool2D pair pool
    # first (_pool_first: such pairs cannot overlap, so the children show which they were);
    # an eval forward runs every child in order
    _pools_first = False

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.values()))

    def __getitem__(self, i):
        layers = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(*layers[i])
        return layers[i]

    def append(self, layer):
        """Add ``layer`` at the end (it must have this container's dtype)."""
        if not isinstance(layer, Module):
            raise TypeError(f"layer must be a fastconv.nn.Module, got {type(layer).__name__}")
        if layer.dtype != self.dtype:
            raise TypeError(f"cannot append a {layer.dtype} layer to a {self.dtype} Sequential")
        self.add_module(str(len(self._modules)), layer)
        return self

    def _route_input_grad(self):
        need = bool(self.input_grad)
        for child in self._modules.values():
            child.input_grad = need
            need = need or child.has_trainable()

    def forward(self, x):
        """Run the children in order, each on the previous one's output.

        In eval mode on the native backend, an activation that can (ReLU, Clip/ReLU6)
        writes its result over the output of the layer before it when that layer hands
        the array over (:func:`.module.fresh_output`: a Conv2D, Linear, BatchNorm2D), so
        no new array is made for it; the result and what backward uses are the same.

        In training mode a ReLU followed by a MaxPool2D runs as the pool then the ReLU
        (``_pool_first``: the same output and gradients, bit for bit, for a quarter of the
        ReLU's work), and ``backward`` runs the pair in that order too."""
        if self.training:
            self._route_input_grad()
            kids = list(self._modules.values())
            i, n = 0, len(kids)
            while i < n:
                child = kids[i]
                if i + 1 < n and _pool_first(child, kids[i + 1]):
                    x = child.forward(kids[i + 1].forward(x))
                    i += 2
                else:
                    x = child.forward(x)
                    i += 1
            if not self._pools_first:
                self.__dict__["_pools_first"] = True
        else:
            if self._pools_first:
                self.__dict__["_pools_first"] = False
            # backward routes input_grad itself; no child's forward reads it
            fuse = plain_native()
            prev = None
            for child in self._modules.values():
                # the class default first: most layers offer no in-place forward
                if (fuse and type(child)._inplace_of is not None and prev is not None
                        and fresh_output(prev)):
                    run = inplace_forward(child)
                    x = child.forward(x) if run is None else run(x)
                else:
                    x = child.forward(x)
                prev = child
        if not self._ran_forward:       # a read, not __setattr__, on every later call
            self._ran_forward = True
        return x

    def backward(self, dy):
        """Run the children's backward in reverse order; returns dL/dx."""
        if not self._ran_forward:
            raise self._no_forward()
        self._route_input_grad()
        kids = list(self._modules.values())
        pools_first = self._pools_first
        i = len(kids) - 1
        while i >= 0:
            child = kids[i]
            if not _runs_backward(child):
                # nothing before this child needs a gradient, and it has none to store
                return None
            if pools_first and i > 0 and _pool_first(kids[i - 1], child):
                # the forward ran this pool before the ReLU ahead of it: the ReLU's backward first
                dy = child.backward(kids[i - 1].backward(dy))
                i -= 2
            else:
                dy = child.backward(dy)
                i -= 1
        return dy if self.input_grad else None


class Residual(Module):
    """Skip connection: ``y = body(x) + x``, or ``body(x) + shortcut(x)`` with a
    projection ``shortcut`` module (e.g. a strided 1x1 Conv2D and a BatchNorm2D)
    when ``body`` changes the shape.
    """

    def __init__(self, body, shortcut=None, *, dtype=None, seed=None):
        named = [("body", body)] + ([("shortcut", shortcut)] if shortcut is not None else [])
        dt = _container_dtype("branch", named, dtype)
        super().__init__(dt, seed)
        self.body = body
        if shortcut is not None:
            self.shortcut = shortcut
        else:
            self.__dict__["shortcut"] = None
        if dtype is not None:
            self.to(dt)
        if seed is not None:
            self.reset_parameters(seed)
        self._ran_forward = False

    def forward(self, x):
        """y = body(x) + x (the shapes must agree)."""
        self._check_input(x)
        y = self.body.forward(x)
        s = x if self.shortcut is None else self.shortcut.forward(x)
        if y.shape != s.shape:
            raise ValueError(
                f"Residual: body output shape {y.shape} differs from the shortcut's {s.shape} "
                f"(input {x.shape}); give Residual a projection shortcut= module that maps the "
                "input to the body's output shape"
            )
        self._ran_forward = True
        return y + s

    def backward(self, dy):
        """dx = body.backward(dy) + dy (the skip path passes dy through)."""
        if not self._ran_forward:
            raise self._no_forward()
        need = bool(self.input_grad)
        self.body.input_grad = need
        dx = self.body.backward(dy) if _runs_backward(self.body) else None
        if self.shortcut is None:
            ds = dy
        else:
            self.shortcut.input_grad = need
            ds = self.shortcut.backward(dy) if _runs_backward(self.shortcut) else None
        if not need:
            return None
        return dx + ds


class Concat(Module):
    """Parallel branches on the same input, outputs concatenated along ``axis``
    (default 1, the channels), as in an Inception block. Every branch output must
    have the same shape except along ``axis``.
    """

    def __init__(self, *branches, axis=1, dtype=None, seed=None):
        if len(branches) == 1 and isinstance(branches[0], (list, tuple)):
            branches = tuple(branches[0])
        if not branches:
            raise ValueError("Concat needs at least one branch")
        dt = _container_dtype("branch", [(str(i), m) for i, m in enumerate(branches)], dtype)
        super().__init__(dt, seed)
        if isinstance(axis, (bool, np.bool_)):
            raise TypeError(f"axis must be an int, got {axis!r}")
        self.axis = as_int(axis, "axis", minimum=-(2**31))
        if self.axis == 0:
            raise ValueError("axis=0 is the batch axis: Concat joins along a feature axis (axis >= 1)")
        for i, b in enumerate(branches):
            self.add_module(str(i), b)
        if dtype is not None:
            self.to(dt)
        if seed is not None:
            self.reset_parameters(seed)
        self._sizes = None

    def forward(self, x):
        """Run every branch on x and concatenate the outputs along the channel axis."""
        self._check_input(x)
        outs = [b.forward(x) for b in self._modules.values()]
        ndim = outs[0].ndim
        ax = self.axis if self.axis > 0 else ndim + self.axis
        if not 1 <= ax < ndim:
            raise ValueError(f"Concat axis={self.axis} is out of range for branch outputs of ndim {ndim}")
        ref = outs[0].shape
        for i, o in enumerate(outs):
            if o.ndim != ndim or o.shape[:ax] + o.shape[ax + 1:] != ref[:ax] + ref[ax + 1:]:
                shapes = ", ".join(str(o_.shape) for o_ in outs)
                raise ValueError(
                    f"Concat branch outputs must agree except along axis {self.axis}, got shapes {shapes}"
                )
        self._sizes = [o.shape[ax] for o in outs]
        self._ax = ax
        self._y_shape = ref[:ax] + (sum(self._sizes),) + ref[ax + 1:]
        return np.concatenate(outs, axis=ax)

    def backward(self, dy):
        """Split dy by channels, run each branch's backward on its part and sum the
        input gradients."""
        if self._sizes is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        need = bool(self.input_grad)
        parts = np.split(dy, np.cumsum(self._sizes)[:-1], axis=self._ax)
        dx = None
        for b, part in zip(self._modules.values(), parts):
            b.input_grad = need
            if not _runs_backward(b):
                continue
            g = b.backward(np.ascontiguousarray(part))
            if need:
                dx = g if dx is None else dx + g
        return dx

    def extra_repr(self):
        return f"axis={self.axis}"
