"""Which implementation the layer API (:mod:`fastconv.nn`) runs on.

Two backends exist:

``"native"`` (the default)
    :mod:`fastconv.functional`, the C kernels;
``"reference"``
    :mod:`fastconv.reference`, the plain NumPy oracle.

Only the convolution, pooling, ReLU, Linear and batch-norm calls of the layers go through
the backend; the layers written in plain NumPy (the other
activations, Dropout, the losses) run the same code on both. So a whole
training run can be repeated on the oracle and compared::

    with fastconv.use_backend("reference"):
        loss = model.forward(x)          # every kernel call is plain NumPy here

    fastconv.use_backend("reference")    # or switch for the rest of the process

The setting is process-wide (not per thread).

:func:`watch` is the documented way to see which ops a network runs (e.g. the
convolution geometries ``fastconv tune --model`` times): within it, in the
calling thread only, every call the layers make through :func:`ops` is
reported to an observer before it runs. Nothing is patched.
"""

from __future__ import annotations

import contextlib
import threading

from . import functional, reference

__all__ = ["BACKENDS", "use_backend", "get_backend", "ops", "plain_native", "watch"]

#: The valid backend names.
BACKENDS = ("native", "reference")

_current = "native"


class _ThreadState(threading.local):
    """Per thread: ``observer``, the :func:`watch` callback, or None (a class default, so
    reading it never takes getattr's missing-attribute path: the layers ask on every call)."""

    observer = None


_local = _ThreadState()


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
    """The module whose functions the layers call: fastconv.functional or fastconv.reference
    (inside :func:`watch`, a view of it that reports each call first)."""
    module = reference if _current == "reference" else functional
    observer = _local.observer
    return module if observer is None else _Watched(module, observer)


def plain_native():
    """True when :func:`ops` is :mod:`fastconv.functional` itself: the native backend, and
    no :func:`watch` observer in this thread. Only then may a layer call the native
    kernels through a shortcut of its own (:mod:`fastconv.functional_prepared`) instead
    of through :func:`ops`: every other case must see each op as a call of the backend."""
    return _current == "native" and _local.observer is None


class _Watched:
    """A backend module whose function calls are reported to ``observer`` before they run."""

    __slots__ = ("_module", "_observer")

    def __init__(self, module, observer):
        self._module = module
        self._observer = observer

    def __getattr__(self, name):
        fn = getattr(self._module, name)
        if not callable(fn):
            return fn
        observer = self._observer

        def call(*args, **kwargs):
            observer(name, args, kwargs)
            return fn(*args, **kwargs)

        return call


@contextlib.contextmanager
def watch(observer):
    """Within the ``with`` block, in the calling thread only, call
    ``observer(name, args, kwargs)`` before each op the layers run through :func:`ops`
    (``name``: the function's name in the backend module, e.g. ``"conv2d"``; ``args``,
    ``kwargs``: its arguments, not to be modified). The op then runs as usual. A nested
    ``watch`` replaces the outer observer until it ends. Other threads are not watched::

        calls = []
        with _backend.watch(lambda name, args, kwargs: calls.append(name)):
            model.forward(x)
    """
    if not callable(observer):
        raise TypeError(f"observer must be callable, got {type(observer).__name__}")
    previous = _local.observer
    _local.observer = observer
    try:
        yield
    finally:
        _local.observer = previous
