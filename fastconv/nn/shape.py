"""Layers that move values without arithmetic: Reshape, Transpose, Slice, Split, Pad2D, Mean.

Shapes here are whole shapes, batch axis included, with PyTorch's meanings
(``x.reshape(shape)``, ``x.permute(perm)``, ``x[...]``, ``torch.split``,
``nn.ConstantPad2d``, ``x.mean(dims)``). A ``-1`` in a Reshape is inferred, so
``Reshape((-1, 4, 8, 8))`` keeps the batch size free. Plain NumPy; every
backward is the exact adjoint (reshape back, inverse permutation, scatter into
zeros, concatenation, crop, spread the mean).
"""

from __future__ import annotations

import numpy as np

from .._args import as_float, as_int
from .module import Module

__all__ = ["Reshape", "Transpose", "Slice", "Split", "Pad2D", "Mean"]


def _int_tuple(values, name, minimum=None):
    if isinstance(values, (bool, np.bool_)) or np.isscalar(values):
        values = (values,)
    try:
        items = list(values)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of ints, got {values!r}") from None
    return tuple(as_int(v, name, minimum=minimum) for v in items)


class _Reshaping(Module):
    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self._x_shape = None

    def _check_dy(self, dy):
        if self._x_shape is None:
            raise self._no_forward()
        self._check_grad(dy, self._y_shape)
        return self.input_grad


class Reshape(_Reshaping):
    """``y = x.reshape(shape)``: ``shape`` is the whole output shape; one entry may be
    -1 (inferred), e.g. ``Reshape((-1, 16))`` flattens each sample of 16 values."""

    def __init__(self, shape, *, dtype=np.float32, seed=None):
        super().__init__(dtype=dtype, seed=seed)
        self.shape = _int_tuple(shape, "shape", minimum=-1)
        if sum(1 for s in self.shape if s == -1) > 1:
            raise ValueError(f"shape {self.shape} may hold at most one -1")

    def forward(self, x):
        """x reshaped to the layer's shape (a view when x is contiguous)."""
        self._check_input(x)
        try:
            y = x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"{self._short()}: cannot reshape an input of shape {x.shape}") from None
        self._x_shape, self._y_shape = x.shape, y.shape
        return y

    def backward(self, dy):
        """dy reshaped back to the input's shape."""
        return dy.reshape(self._x_shape) if self._check_dy(dy) else None

    def extra_repr(self):
        return f"shape={self.shape}"


class Transpose(_Reshaping):
    """``y = x.transpose(perm)`` (``x.permute(perm)``); ``perm`` covers every axis, batch included."""

    def __init__(self, perm, *, dtype=np.float32, seed=None):
        super().__init__(dtype=dtype, seed=seed)
        self.perm = _int_tuple(perm, "perm", minimum=0)
        if sorted(self.perm) != list(range(len(self.perm))):
            raise ValueError(f"perm must be a permutation of 0..{len(self.perm) - 1}, got {self.perm}")
        self._inverse = tuple(int(i) for i in np.argsort(self.perm))

    def forward(self, x):
        """x with its axes permuted by ``perm`` (a view)."""
        self._check_input(x, len(self.perm))
        y = np.ascontiguousarray(x.transpose(self.perm))
        self._x_shape, self._y_shape = x.shape, y.shape
        return y

    def backward(self, dy):
        """dy with the inverse permutation applied."""
        return np.ascontiguousarray(dy.transpose(self._inverse)) if self._check_dy(dy) else None

    def extra_repr(self):
        return f"perm={self.perm}"


class Slice(_Reshaping):
    """``y = x[...]`` with Python's slice rules along ``axes``: ``starts``, ``ends`` (None
    for "to the end", whatever the step's sign) and ``steps`` (default 1)."""

    def __init__(self, starts, ends, axes, steps=None, *, dtype=np.float32, seed=None):
        super().__init__(dtype=dtype, seed=seed)
        self.axes = _int_tuple(axes, "axes", minimum=None)
        n = len(self.axes)
        self.starts = _int_tuple(starts, "starts", minimum=None)
        self.ends = tuple(None if e is None else as_int(e, "ends", minimum=None) for e in ends)
        self.steps = (1,) * n if steps is None else _int_tuple(steps, "steps", minimum=None)
        if not len(self.starts) == len(self.ends) == len(self.steps) == n:
            raise ValueError("starts, ends, axes and steps must have the same length")
        if any(s == 0 for s in self.steps):
            raise ValueError(f"steps must be nonzero, got {self.steps}")
        if len(set(self.axes)) != n:
            raise ValueError(f"axes must be distinct, got {self.axes}")

    def _index(self, ndim):
        idx = [slice(None)] * ndim
        for a, s, e, st in zip(self.axes, self.starts, self.ends, self.steps):
            if not -ndim <= a < ndim:
                raise ValueError(f"{self._short()}: axis {a} is out of range for a {ndim}-d input")
            idx[a % ndim] = slice(s, e, st)
        return tuple(idx)

    def forward(self, x):
        """The slice of x the layer's starts/ends/axes/steps describe (a view)."""
        self._check_input(x)
        self._idx = self._index(x.ndim)
        y = np.ascontiguousarray(x[self._idx])
        self._x_shape, self._y_shape = x.shape, y.shape
        return y

    def backward(self, dy):
        """dx: zeros of the input's shape with dy written into the sliced positions."""
        if not self._check_dy(dy):
            return None
        dx = np.zeros(self._x_shape, self.dtype)
        dx[self._idx] = dy
        return dx

    def extra_repr(self):
        return f"starts={self.starts}, ends={self.ends}, axes={self.axes}, steps={self.steps}"


class Split(Module):
    """Cut the input along ``axis`` into pieces of the given ``sizes`` (``torch.split``).

    ``forward(x)`` returns a tuple; ``backward(*dys)`` takes one gradient per piece
    (None for a piece that got none) and returns their concatenation.
    """

    def __init__(self, sizes, axis=1, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self.sizes = _int_tuple(sizes, "sizes", minimum=0)
        if not self.sizes:
            raise ValueError("sizes must name at least one piece")
        self.axis = as_int(axis, "axis", minimum=None)
        self._x_shape = None

    def forward(self, x):
        """A tuple of pieces of x along ``axis``, of the layer's sizes."""
        self._check_input(x)
        if not -x.ndim <= self.axis < x.ndim:
            raise ValueError(f"{self._short()}: axis {self.axis} is out of range for input shape {x.shape}")
        ax = self.axis % x.ndim
        if sum(self.sizes) != x.shape[ax]:
            raise ValueError(f"{self._short()}: the sizes add up to {sum(self.sizes)}, but axis "
                             f"{self.axis} of the input {x.shape} has {x.shape[ax]}")
        self._x_shape, self._ax = x.shape, ax
        parts = np.split(x, np.cumsum(self.sizes)[:-1], axis=ax)
        return tuple(np.ascontiguousarray(p) for p in parts)

    def backward(self, *dys):
        """The gradients of the pieces (one per output) joined back along ``axis``."""
        if self._x_shape is None:
            raise self._no_forward()
        if len(dys) != len(self.sizes):
            raise TypeError(f"{self._short()}.backward takes {len(self.sizes)} gradients, got {len(dys)}")
        if not self.input_grad:
            return None
        parts = []
        for dy, n in zip(dys, self.sizes):
            shape = self._x_shape[:self._ax] + (n,) + self._x_shape[self._ax + 1:]
            parts.append(np.zeros(shape, self.dtype) if dy is None else self._check_grad(dy, shape))
        return np.concatenate(parts, axis=self._ax)

    def extra_repr(self):
        return f"sizes={self.sizes}, axis={self.axis}"


class Pad2D(_Reshaping):
    """Pad the last two axes with ``value`` (``torch.nn.ConstantPad2d``): ``padding`` is
    an int or ``(left, right, top, bottom)``. It gives a convolution or pooling an
    uneven padding (e.g. TensorFlow's "same" with stride 2)."""

    def __init__(self, padding, value=0.0, *, dtype=np.float32, seed=None):
        super().__init__(dtype=dtype, seed=seed)
        p = _int_tuple(padding, "padding", minimum=0)
        if len(p) == 1:
            p = p * 4
        if len(p) != 4:
            raise ValueError(f"padding must be an int or (left, right, top, bottom), got {padding!r}")
        self.padding = p
        self.value = as_float(value, "value")

    def forward(self, x):
        """x padded with a constant on the left, right, top and bottom (PyTorch's order)."""
        self._check_input(x, (3, 4))
        left, right, top, bottom = self.padding
        pad = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
        y = np.pad(x, pad, constant_values=self.dtype.type(self.value))
        self._x_shape, self._y_shape = x.shape, y.shape
        return y

    def backward(self, dy):
        """dy with the padding cropped away."""
        if not self._check_dy(dy):
            return None
        left, right, top, bottom = self.padding
        H, W = self._x_shape[-2:]
        return np.ascontiguousarray(dy[..., top:top + H, left:left + W])

    def extra_repr(self):
        s = f"padding={self.padding}"
        return s + (f", value={self.value}" if self.value else "")


class Mean(_Reshaping):
    """Mean over ``axes`` (``x.mean(dims, keepdim)``), e.g. ``Mean((2, 3), keepdims=True)``
    for a global average pooling that keeps (N, C, 1, 1)."""

    def __init__(self, axes, keepdims=False, *, dtype=np.float32, seed=None):
        super().__init__(dtype=dtype, seed=seed)
        self.axes = _int_tuple(axes, "axes", minimum=None)
        if not isinstance(keepdims, (bool, np.bool_)):
            raise TypeError(f"keepdims must be True or False, got {keepdims!r}")
        self.keepdims = bool(keepdims)

    def forward(self, x):
        """The mean of x over ``axes`` (kept as size-1 axes when ``keepdims``)."""
        self._check_input(x)
        for a in self.axes:
            if not -x.ndim <= a < x.ndim:
                raise ValueError(f"{self._short()}: axis {a} is out of range for input shape {x.shape}")
        axes = tuple(sorted({a % x.ndim for a in self.axes}))
        y = np.asarray(x.mean(axis=axes, keepdims=self.keepdims), dtype=self.dtype)
        self._axes = axes
        self._count = int(np.prod([x.shape[a] for a in axes]))
        self._x_shape, self._y_shape = x.shape, y.shape
        return y

    def backward(self, dy):
        """dy spread evenly over the averaged positions."""
        if not self._check_dy(dy):
            return None
        g = dy if self.keepdims else np.expand_dims(dy, self._axes)
        dx = np.empty(self._x_shape, self.dtype)
        dx[...] = g / self.dtype.type(self._count)
        return dx

    def extra_repr(self):
        return f"axes={self.axes}, keepdims={self.keepdims}"
