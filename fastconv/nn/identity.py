"""The identity layer (as ``torch.nn.Identity``): a branch that passes its input on,
e.g. DenseNet's "concatenate with the input", ``Concat(Identity(), layer)``."""

from __future__ import annotations

import numpy as np

from .module import Module

__all__ = ["Identity"]


class Identity(Module):
    """y = x (the same array, not a copy); backward returns dy."""

    def __init__(self, *, dtype=np.float32, seed=None):
        super().__init__(dtype, seed)
        self._shape = None

    def forward(self, x):
        """y = x, the input array itself."""
        self._check_input(x)
        self._shape = x.shape
        return x

    def backward(self, dy):
        """dx = dy (None when no input gradient is needed)."""
        if self._shape is None:
            raise self._no_forward()
        self._check_grad(dy, self._shape)
        return dy if self.input_grad else None
