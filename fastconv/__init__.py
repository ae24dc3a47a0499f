"""fastconv: fast CPU convolutional networks.

Hand-written C kernels (im2col/col2im, direct convolution, max and average
pooling and their gradients) under a NumPy-in/NumPy-out function API, a layer
API (:mod:`fastconv.nn`) and a trainer (:mod:`fastconv.train`), all checked
against the plain NumPy oracle :mod:`fastconv.reference`.
"""

from __future__ import annotations

__version__ = "0.1.0"

import os as _os

# OpenMP threads that busy-wait between parallel regions steal the cores from
# NumPy's BLAS threads (used by Linear layers and the im2col path) and from
# other processes: measured here, passive waiting trains LeNet-5 2.5-4x faster
# on a busy 2-core machine. The OpenMP runtime reads this once, when the
# extension is loaded just below; a value set by the user is left alone.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

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
from ._runtime import get_num_threads, set_num_threads
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
from . import reference  # noqa: E402  (the oracle is part of the public API)

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
    "set_num_threads",
    "get_num_threads",
    "openmp_enabled",
    "show_config",
    "config",
    "release_workspace",
    "reference",
    "use_backend",
    "get_backend",
]


def openmp_enabled():
    """True when the native kernels were built with OpenMP."""
    return _kernels.openmp_enabled()


def config():
    """The build and runtime configuration as a dict."""
    import platform

    import numpy

    return {
        "version": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "compiler": _kernels.build_compiler(),
        "openmp": openmp_enabled(),
        "threads": get_num_threads(),
        "cores": _kernels.num_procs(),
        "cpu_features": _kernels.cpu_features(),
        "machine": platform.machine(),
        "workspace_cached_bytes": _kernels.workspace_cached(),
    }


def show_config():
    """Print version, compiler, OpenMP on/off, thread count and CPU features."""
    cfg = config()
    feats = ", ".join(k for k, v in cfg["cpu_features"].items() if v) or "none detected"
    print(f"fastconv {cfg['version']}")
    print(f"  python        {cfg['python']} (numpy {cfg['numpy']})")
    print(f"  compiler      {cfg['compiler']}")
    print(f"  openmp        {'enabled' if cfg['openmp'] else 'disabled'}")
    print(f"  threads       {cfg['threads']} (cores available: {cfg['cores']})")
    print(f"  cpu features  {feats} ({cfg['machine']})")
    print(f"  workspace     {cfg['workspace_cached_bytes'] / 2**20:.1f} MiB kept for reuse")


def release_workspace():
    """Free the kernel workspace fastconv keeps between calls; return the bytes freed.

    The Winograd, GEMM and direct convolution kernels (and the matrix multiply behind
    :func:`linear`) give their scratch buffers back to a small cache (at most four
    blocks) instead of to the system, so the next call does not page-fault fresh
    memory (on the development machine that cost up to half the time of a large
    layer's pass). The cache holds about the largest workspace recently used: a few
    MiB to a few tens of MiB. Call this to hand it back, e.g. after a training run.
    """
    return _kernels.workspace_release()


def __getattr__(name):
    # The layer-API backend switch lives in fastconv._backend; imported lazily
    # so the function API does not depend on the layer modules.
    if name in ("use_backend", "get_backend"):
        from . import _backend

        return getattr(_backend, name)
    raise AttributeError(f"module 'fastconv' has no attribute {name!r}")
from .inference import compile  # noqa: E402,F401  (fastconv.compile: the compiled inference plan)
