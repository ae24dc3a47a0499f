"""The compiled plan of an int8 model: ``fastconv.compile(fastconv.quantize(model, X))``.

A :class:`~fastconv.qlayers.QuantizedModel` is already fused where the float
plan fuses: every int8 convolution / linear layer applies its bias,
requantization and ReLU in the kernel's epilogue, activations stay uint8 in
the C4 layout between layers, and its forward keeps each layer's output
buffer from one call to the next. What compiling adds is what the float plan
promises besides: a snapshot of the weights (later changes to the model do
not reach the plan) and safe use from several threads. Each call takes a copy
of the network from a small pool (a new copy when every one is in use), so
concurrent calls never share the kept buffers, and returns it afterwards.
"""

from __future__ import annotations

import copy
import threading

import numpy as np

from ..qlayers import QuantizedModel

__all__ = ["QuantizedPlan"]


class QuantizedPlan:
    """A compiled int8 model (see :func:`fastconv.compile`). Call it like ``model.forward``:
    float32 in, float32 out."""

    def __init__(self, model):
        if not isinstance(model, QuantizedModel):
            raise TypeError(f"QuantizedPlan expects a QuantizedModel, got {type(model).__name__}")
        self.dtype = np.dtype(np.float32)
        self._model = copy.deepcopy(model).eval()
        self._free = [self._model]
        self._lock = threading.Lock()

    def _take(self):
        with self._lock:
            if self._free:
                return self._free.pop()
        return copy.deepcopy(self._model)

    def __call__(self, x):
        m = self._take()
        try:
            return m.forward(x)
        finally:
            with self._lock:
                self._free.append(m)

    forward = __call__

    def __repr__(self):
        return f"QuantizedPlan(int8, float32 in and out)\n{self._model!r}"
