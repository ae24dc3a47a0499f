"""Layers of several inputs: Add, Sub, Mul, Div (NumPy broadcasting), MatMul and Cat.

They are the joins of a :class:`~fastconv.nn.Graph`: ``forward(a, b)`` takes the
two operands and ``backward(dy)`` returns the pair ``(da, db)`` (``(None, None)``
when ``input_grad`` is False). Where an operand was broadcast, its gradient is
summed back to its own shape ("unbroadcast").

Built with a fixed operand ``other`` (an array: a per-channel scale, a bias, the
3 of a hard-swish), the same classes are one-input layers, ``y = x op other``
(``reverse=True``: ``y = other op x``), usable in a :class:`Sequential`. The
operand is a trainable :class:`Parameter` (``trainable=True``, default) or a
fixed buffer; either way it is saved by ``state_dict``. These layers are plain
NumPy; :class:`MatMul` calls the backend's ``linear`` kernel when it can.
"""

from __future__ import annotations

import numpy as np

from .._args import as_int
from .._backend import ops
from .module import Module, Parameter

__all__ = ["Add", "Sub", "Mul", "Div", "MatMul", "Cat", "unbroadcast"]


def unbroadcast(g, shape):
    """Sum ``g`` over the axes NumPy broadcasting added or stretched to reach it from ``shape``."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1
    )
    return np.ascontiguousarray(g.sum(axis=axes, keepdims=True).reshape(shape))


class _Binary(Module):
    """Shared machinery of the two-operand layers (see the module docstring)."""

    symbol = "?"

    def __init__(self, other=None, *, reverse=False, trainable=True, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        if not isinstance(reverse, (bool, np.bool_)):
            raise TypeError(f"reverse must be True or False, got {reverse!r}")
        if not isinstance(trainable, (bool, np.bool_)):
            raise TypeError(f"trainable must be True or False, got {trainable!r}")
        self.reverse = bool(reverse)
        if other is None:
            if reverse:
                raise ValueError("reverse=True needs a fixed operand other=")
            self.__dict__["other"] = None
        else:
            arr = np.asarray(other)
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"other must be a numeric array, got dtype {arr.dtype}")
            arr = np.array(np.atleast_1d(arr), dtype=self.dtype, order="C")
            if trainable:
                self.other = Parameter(arr)
            else:
                self.register_buffer("other", arr)
        self._cache = None

    # -- operand handling --------------------------------------------------

    @property
    def fixed(self):
        """True when the layer holds its second operand (a one-input layer)."""
        return self.other is not None

    def _other_array(self):
        o = self.other
        return o.data if isinstance(o, Parameter) else o

    def _operands(self, a, b):
        if self.fixed:
            if b is not None:
                raise TypeError(f"{self._short()} holds its operand: call forward(x) with one input")
            self._check_input(a)
            c = self._other_array()
            return (c, a) if self.reverse else (a, c)
        if b is None:
            raise TypeError(f"{self._short()} takes two inputs: forward(a, b)")
        self._check_input(a, what="a")
        self._check_input(b, what="b")
        return a, b

    def forward(self, a, b=None):
        """y = a (op) b with NumPy broadcasting; with a fixed operand, ``forward(x)``
        combines x with it (``other (op) x`` when ``reverse``)."""
        a, b = self._operands(a, b)
        try:
            y = self._fwd(a, b)
        except ValueError:
            raise ValueError(
                f"{self._short()}: operand shapes {a.shape} and {b.shape} do not broadcast"
            ) from None
        y = np.asarray(y, dtype=self.dtype)
        self._cache = (a, b, y if self._grad_needs_y else None, y.shape)
        return y

    #: whether ``_grads`` reads the output's values (else only its shape is kept)
    _grad_needs_y = True

    def backward(self, dy):
        """Gradients of the operands, each summed back to its own shape: (da, db) for
        two inputs; dx for a fixed operand, whose gradient goes to its ``.grad`` when it
        is trainable."""
        if self._cache is None:
            raise self._no_forward()
        a, b, y, y_shape = self._cache
        self._check_grad(dy, y_shape)
        need_in = bool(self.input_grad)
        p = self.other if isinstance(self.other, Parameter) and self.other.requires_grad else None
        if self.fixed:
            need_a = need_in if not self.reverse else p is not None
            need_b = need_in if self.reverse else p is not None
        else:
            need_a = need_b = need_in
        ga, gb = self._grads(dy, a, b, y, need_a, need_b)
        ga = unbroadcast(ga, a.shape) if need_a else None
        gb = unbroadcast(gb, b.shape) if need_b else None
        if self.fixed:
            gx, gc = (gb, ga) if self.reverse else (ga, gb)
            if p is not None:
                p.accumulate(gc)
            return gx if need_in else None
        return (ga, gb) if need_in else (None, None)

    def extra_repr(self):
        if not self.fixed:
            return ""
        s = f"other=<{tuple(self._other_array().shape)}>"
        if self.reverse:
            s += ", reverse=True"
        if not isinstance(self.other, Parameter):
            s += ", trainable=False"
        return s


class Add(_Binary):
    """``y = a + b`` with broadcasting; ``Add(other)``: ``y = x + other``."""

    symbol = "+"
    # backward needs the operands only, so the output is the caller's alone
    _grad_needs_y = False
    _fresh_forward = _Binary.forward

    def _fwd(self, a, b):
        return a + b

    def _grads(self, dy, a, b, y, need_a, need_b):
        return dy, dy


class Sub(_Binary):
    """``y = a - b`` with broadcasting; ``Sub(other)``: ``y = x - other`` (``reverse``: ``other - x``)."""

    symbol = "-"
    # backward needs the operands only, so the output is the caller's alone
    _grad_needs_y = False
    _fresh_forward = _Binary.forward

    def _fwd(self, a, b):
        return a - b

    def _grads(self, dy, a, b, y, need_a, need_b):
        return dy, (-dy if need_b else None)


class Mul(_Binary):
    """``y = a * b`` with broadcasting; ``Mul(other)``: ``y = x * other``."""

    symbol = "*"
    # backward needs the operands only, so the output is the caller's alone
    _grad_needs_y = False
    _fresh_forward = _Binary.forward

    def _fwd(self, a, b):
        return a * b

    def _grads(self, dy, a, b, y, need_a, need_b):
        return (dy * b if need_a else None), (dy * a if need_b else None)


class Div(_Binary):
    """``y = a / b`` with broadcasting; ``Div(other)``: ``y = x / other`` (``reverse``: ``other / x``)."""

    symbol = "/"

    def _fwd(self, a, b):
        return a / b

    def _grads(self, dy, a, b, y, need_a, need_b):
        return (dy / b if need_a else None), (-dy * y / b if need_b else None)


class MatMul(_Binary):
    """``y = a @ b`` with ``numpy.matmul``'s rules (1-d operands, broadcast batch axes).

    ``MatMul(other)``: ``y = x @ other`` (``reverse``: ``other @ x``). A 2-d input
    times a fixed 2-d matrix runs on the backend's ``linear`` kernel.
    """

    symbol = "@"

    def _kernel_case(self, a, b):
        return self.fixed and not self.reverse and a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[0]

    def _fwd(self, a, b):
        if self._kernel_case(a, b):
            return ops().linear(a, np.ascontiguousarray(b.T))
        return np.matmul(a, b)

    def _grads(self, dy, a, b, y, need_a, need_b):
        if self._kernel_case(a, b):
            ga, gw, _ = ops().linear_backward(dy, a, np.ascontiguousarray(b.T), need_dx=need_a, need_db=False)
            return ga, (gw.T if need_b else None)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g = dy
        if a.ndim == 1:
            g = np.expand_dims(g, -2)
        if b.ndim == 1:
            g = np.expand_dims(g, -1)
        ga = np.matmul(g, np.swapaxes(b2, -1, -2)) if need_a else None
        gb = np.matmul(np.swapaxes(a2, -1, -2), g) if need_b else None
        if need_a and a.ndim == 1:
            ga = unbroadcast(ga, (1,) + a.shape).reshape(a.shape)
        if need_b and b.ndim == 1:
            gb = unbroadcast(gb, b.shape + (1,)).reshape(b.shape)
        return ga, gb


class Cat(Module):
    """Join any number of inputs along ``axis`` (``numpy.concatenate``; ``torch.cat``).

    ``forward(*xs)``; ``backward(dy)`` returns a tuple with one gradient per input.
    (:class:`Concat` is the container that runs parallel branches on one input.)
    """

    def __init__(self, axis=1, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.axis = as_int(axis, "axis", minimum=None)
        self._sizes = None

    def forward(self, *xs):
        """Concatenate the inputs along ``axis`` (they must agree on every other axis)."""
        if not xs:
            raise TypeError(f"{self._short()} needs at least one input")
        for i, x in enumerate(xs):
            self._check_input(x, what=f"inputs[{i}]")
        nd = xs[0].ndim
        if not -nd <= self.axis < nd:
            raise ValueError(f"{self._short()}: axis {self.axis} is out of range for {nd}-d inputs")
        ax = self.axis % nd
        try:
            y = np.concatenate(xs, axis=ax)
        except ValueError:
            shapes = ", ".join(str(x.shape) for x in xs)
            raise ValueError(f"{self._short()}: inputs must agree except along axis {self.axis}, got {shapes}") from None
        self._sizes = [x.shape[ax] for x in xs]
        self._ax = ax
        self._y_shape = y.shape
        return y

    def backward(self, dy):
        """Split dy along ``axis`` into one gradient per input (a tuple)."""
        if self._sizes is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        if not self.input_grad:
            return tuple(None for _ in self._sizes)
        parts = np.split(dy, np.cumsum(self._sizes)[:-1], axis=self._ax)
        return tuple(np.ascontiguousarray(p) for p in parts)

    def extra_repr(self):
        return f"axis={self.axis}"
