"""What the figures are measured on, and the thread settings of the three libraries.

The optional packages (``torch``, ``threadpoolctl``) are imported here, inside
functions, when they can be: neither is ever a dependency of fastconv.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform

import numpy as np

from .. import _config, _version

from .._runtime import cpu_name, set_num_threads

__all__ = ["import_torch", "import_threadpoolctl", "blas_info", "blas_threads", "environment", "threads"]


def import_torch():
    """torch, or None when it cannot be imported (it is never a dependency) or
    ``$FASTCONV_BENCH_NO_TORCH`` is set."""
    if os.environ.get("FASTCONV_BENCH_NO_TORCH"):
        return None
    try:
        import torch
    except Exception:  # ImportError, or a broken install
        return None
    return torch


def import_threadpoolctl():
    """threadpoolctl, or None when it is not installed."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl


def blas_info():
    """threadpoolctl's description of NumPy's BLAS (the first 'blas' entry), or None."""
    tpc = import_threadpoolctl()
    if tpc is None:
        return None
    for lib in tpc.threadpool_info():
        if lib.get("user_api") == "blas" and "numpy" in str(lib.get("filepath", "")):
            return lib
    for lib in tpc.threadpool_info():
        if lib.get("user_api") == "blas":
            return lib
    return None


def blas_threads():
    """The thread count of NumPy's BLAS, or None when it cannot be told."""
    blas = blas_info()
    return None if blas is None else blas.get("num_threads")


def environment():
    """What the figures were measured on: a JSON-serialisable dict."""
    torch = import_torch()
    blas = blas_info()
    cfg = _config.config()
    env = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_name(),
        "cores": cfg.get("cores"),
        "python": platform.python_version(),
        "fastconv": _version.__version__,
        "fastconv_openmp": cfg.get("openmp"),
        "fastconv_compiler": cfg.get("compiler"),
        "cpu_features": sorted(k for k, v in cfg.get("cpu_features", {}).items() if v),
        "numpy": np.__version__,
        "blas": None if blas is None else {
            k: blas.get(k) for k in ("internal_api", "version", "architecture", "threading_layer", "prefix")
        },
        "threadpoolctl": import_threadpoolctl() is not None,
        "torch": None if torch is None else torch.__version__,
        "env": {k: os.environ[k] for k in sorted(os.environ)
                if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "FASTCONV_"))},
    }
    try:
        env["loadavg"] = list(os.getloadavg())
    except OSError:
        env["loadavg"] = None
    return env


@contextlib.contextmanager
def threads(t, torch):
    """fastconv, NumPy's BLAS and torch each with ``t`` threads; restored afterwards."""
    prev_fc = set_num_threads(t)
    prev_torch = torch.get_num_threads() if torch is not None else None
    tpc = import_threadpoolctl()
    limiter = tpc.threadpool_limits(limits=t, user_api="blas") if tpc is not None else contextlib.nullcontext()
    try:
        with limiter:
            if torch is not None:
                torch.set_num_threads(t)
            yield
    finally:
        set_num_threads(prev_fc)
        if torch is not None:
            torch.set_num_threads(prev_torch)

