"""Which implementation the layer API (:mod:`fastconv.nn`) runs on.

Two backends exist:

``"native"`` (the default)
    :mod:`fastconv.functional`, the C kernels;
``"reference"``
    :mod:`fastconv.reference`, the plain NumPy oracle.

Only the convolution, pooling, ReLU and Linear calls of the layers go through
the backend; the layers written in plain NumPy (BatchNorm2D, the other
activations, Dropout, the losses) run the same code on both. So a whole
training run can be repeated on the oracle and compared::

    with fastconv.use_backend("reference"):
        loss = model.forward(x)          # every kernel call is plain NumPy here

    fastconv.use_backend("reference")    # or switch for the rest of the process

The setting is process-wide (not per thread).
"""

from __future__ import annotations

from . import functional, reference

__all__ = ["BACKENDS", "use_backend", "get_backend", "ops"]

#: The valid backend names.
BACKENDS = ("native", "reference")

_current = "native"


class _BackendSwitch:
    """Returned by :func:`use_backend`; as a context manager it restores the previous backend."""

    __slots__ = ("name", "previous")

    def __init__(self, name, previous):
        self.name = name
        self.previous = previous

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        global _current
        _current = self.previous
        return False

    def __repr__(self):
        return f"use_backend({self.name!r})"


def use_backend(name):
    """Make every layer run on backend ``name`` ("native" or "reference").

    The switch happens at once and lasts for the rest of the process; the
    returned object is also a context manager that puts the previous backend
    back on exit::

        with fastconv.use_backend("reference"):
            ...
    """
    global _current
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(
            f"backend name must be one of {', '.join(repr(b) for b in BACKENDS)}, got {name!r}"
        )
    switch = _BackendSwitch(name, _current)
    _current = name
    return switch


def get_backend():
    """The name of the backend the layers run on now: "native" or "reference"."""
    return _current


def ops():
    """The module whose functions the layers call: fastconv.functional or fastconv.reference."""
    return reference if _current == "reference" else functional
