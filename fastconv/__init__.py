"""fastconv: fast CPU convolutional networks.

Hand-written C kernels (im2col/col2im, direct convolution, max and average
pooling and their gradients) under a NumPy-in/NumPy-out function API, a layer
API (:mod:`fastconv.nn`) and a trainer (:mod:`fastconv.train`), all checked
against the plain NumPy oracle :mod:`fastconv.reference`.

This module is the package's front door and the top floor of its house: it
gathers the public names from the modules below and no module of the package
imports it. ``fastconv.nn``, ``fastconv.optim`` and ``fastconv.models`` load with
it; the application modules (``train``, ``data``, ``checkpoint``, ``callbacks``,
``plotting``, ``tune``, ``bench``, ...) load on first use of the attribute.
"""

from __future__ import annotations

import os as _os
import sys as _sys
import importlib as _importlib

from ._version import __version__
from . import _env

# OpenMP threads that busy-wait between parallel regions steal the cores from
# NumPy's BLAS threads (used by Linear layers and the im2col path) and from
# other processes: measured here, passive waiting trained LeNet-5 2.5-4x faster
# than OpenMP's long default spin on a busy 2-core machine; threads that sleep
# at once make each layer call pay a wake-up, so they spin about 100 us first.
# Likewise OpenBLAS's idle threads spin about 0.1 s after each NumPy matrix
# product, which made fastconv's next calls 1.5-2.7x slower on a 2-core machine
# (docs/performance.md). The runtimes read these once, when they load (OpenMP
# with the extension just below, OpenBLAS with NumPy); values set by the user
# are left alone.
_env.set_runtime_defaults(blas_loaded="numpy" in _sys.modules)

try:
    from . import _kernels
except ImportError as _e:  # a source checkout without the compiled extension
    _here = _os.path.dirname(_os.path.abspath(__file__))
    if not any(f.startswith("_kernels.") and f.endswith((".so", ".pyd"))
               for f in _os.listdir(_here)):
        raise ImportError(
            f"fastconv's compiled extension (_kernels) is not built in {_here}. "
            "Python found this source tree before an installed fastconv (the current "
            "folder comes first on sys.path). Install it and run from another folder "
            "(pip install . ; cd elsewhere), or build it here: "
            "python setup.py build_ext --inplace"
        ) from _e
    raise
from ._runtime import blas_info, get_num_threads, set_num_threads
from .functional import (
    avg_pool2d,
    avg_pool2d_backward,
    col2im,
    conv2d,
    conv2d_backward,
    im2col,
    max_pool2d,
    max_pool2d_backward,
    relu,
    relu_backward,
    linear,
    linear_backward,
)
from .functional import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    conv1d,
    conv1d_backward,
    conv_transpose2d,
    conv_transpose2d_backward,
    deform_conv2d,
    deform_conv2d_backward,
    lp_pool2d,
    lp_pool2d_backward,
)
from . import reference  # noqa: E402  (the oracle is part of the public API)
from . import models, nn, optim
from ._config import config, openmp_enabled, release_workspace, show_config
from .inference import compile  # noqa: A001  (fastconv.compile: the compiled inference plan)
from ._backend import get_backend, use_backend
# compression (int8, pruning, binary weights); importing these also registers the
# save/load codec of compressed models (fastconv.compressed_io)
from .quantize import quantize  # noqa: E402
from .prune import prune  # noqa: E402
from .binarize import binarize  # noqa: E402

__all__ = [
    "conv2d",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "im2col",
    "col2im",
    "relu",
    "relu_backward",
    "linear",
    "linear_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "lp_pool2d",
    "lp_pool2d_backward",
    "conv1d",
    "conv1d_backward",
    "deform_conv2d",
    "deform_conv2d_backward",
    "set_num_threads",
    "blas_info",
    "get_num_threads",
    "openmp_enabled",
    "show_config",
    "config",
    "release_workspace",
    "reference",
    "use_backend",
    "get_backend",
    "nn",
    "optim",
    "models",
    "compile",
    "quantize",
    "prune",
    "binarize",
]

#: Submodules loaded on first use of ``fastconv.<name>`` (they pull in more of the
#: standard library and optional packages than the function API needs).
_LAZY_SUBMODULES = ("train", "data", "checkpoint", "callbacks", "plotting", "tune", "bench",
                    "selftest", "cli", "onnx")


def __getattr__(name):
    # PEP 562: the facade imports downward only; nothing below imports it.
    if name in _LAZY_SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'fastconv' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))
