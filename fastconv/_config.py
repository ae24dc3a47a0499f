"""Build and runtime configuration: :func:`config`, :func:`show_config`,
:func:`openmp_enabled`, :func:`release_workspace` (re-exported by ``fastconv``)."""

from __future__ import annotations

import platform as _platform

import numpy as _np

from . import _kernels
from ._runtime import get_num_threads
from ._version import __version__

__all__ = ["openmp_enabled", "config", "show_config", "release_workspace"]


def openmp_enabled():
    """True when the native kernels were built with OpenMP."""
    return _kernels.openmp_enabled()


def config():
    """The build and runtime configuration as a dict."""
    return {
        "version": __version__,
        "python": _platform.python_version(),
        "numpy": _np.__version__,
        "compiler": _kernels.build_compiler(),
        "openmp": openmp_enabled(),
        "threads": get_num_threads(),
        "cores": _kernels.num_procs(),
        "cpu_features": _kernels.cpu_features(),
        "machine": _platform.machine(),
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
