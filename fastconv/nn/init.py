"""Weight initialisation shared by the layers with weights.

Weights are shaped as PyTorch's: Conv2D ``(out, in/groups, kh, kw)``, Linear
``(out, in)``. Initialisation (``init=``):

``"he_normal"`` (default)
    N(0, 2/fan_in): He / Kaiming normal, right for layers followed by ReLU;
``"he_uniform"``
    U(-sqrt(6/fan_in), sqrt(6/fan_in));
``"xavier_normal"``, ``"xavier_uniform"``
    Glorot, variance 2/(fan_in + fan_out), for Sigmoid / Tanh networks.

``fan_in`` is ``in/groups * kh * kw`` (Conv2D) or ``in`` (Linear) and
``fan_out`` is ``out * kh * kw`` or ``out``. Biases start at zero. The draws are
made in float64 from ``numpy.random.default_rng(seed)`` and then cast, so a
float32 and a float64 layer built with the same seed hold the same values up
to rounding.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["INITS", "init_weight", "check_init"]

INITS = ("he_normal", "he_uniform", "xavier_normal", "xavier_uniform")


def check_init(init):
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    return init


def init_weight(rng, shape, fan_in, fan_out, init, dtype):
    """Draw an initial weight array (float64 draws, then cast to ``dtype``)."""
    if init == "he_normal":
        w = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
    elif init == "he_uniform":
        bound = math.sqrt(6.0 / fan_in)
        w = rng.uniform(-bound, bound, shape)
    elif init == "xavier_normal":
        w = rng.standard_normal(shape) * math.sqrt(2.0 / (fan_in + fan_out))
    else:
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-bound, bound, shape)
    return np.ascontiguousarray(w, dtype=dtype)


def fmt_pair(p):
    """A pair as ``(a, b)`` in a repr (a padding string as itself)."""
    return p if isinstance(p, str) else f"({p[0]}, {p[1]})"
