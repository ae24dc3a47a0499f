"""Thread control for the native kernels.

The kernels take their thread count as an argument; this module holds the
process-wide setting. Default: the OpenMP default (``OMP_NUM_THREADS`` if set,
else the number of usable cores), or ``FASTCONV_NUM_THREADS`` if set.

Fork safety: GNU OpenMP's thread pool does not survive ``os.fork()``; a child
that enters a parallel region after its parent used OpenMP threads can hang.
So in a forked child of a process that already ran a multi-threaded kernel,
fastconv runs single-threaded (``set_num_threads`` in the child cannot raise
it). Processes started with the "spawn" or "forkserver" methods are unaffected.

Also the CPU's name (:func:`cpu_name`), which the benchmark report and the tuning
cache record.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading

from . import _env, _kernels

_lock = threading.Lock()
_state = {"threads": None, "used_pool": False, "forked_child": False}


def _default_threads():
    _env.check()
    n = _env.num_threads()
    return n if n is not None else max(1, _kernels.max_threads())


def set_num_threads(n):
    """Set how many threads the native kernels use (>= 1). Returns the previous value."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be a positive number of threads, got {n}")
    with _lock:
        prev = get_num_threads()
        _state["threads"] = n
    return prev


def get_num_threads():
    """How many threads the native kernels use (1 when built without OpenMP)."""
    if _state["threads"] is None:
        _state["threads"] = _default_threads()
    return _state["threads"] if _kernels.openmp_enabled() else 1


#: Below about this many elementary operations a call runs on one thread: waking
#: the OpenMP team costs more than it saves (and much more on a loaded machine).
MIN_PARALLEL_WORK = 1 << 15


#: Below about this many multiply-adds a convolution pass runs on one thread, and
#: below MIN_PARALLEL_POOL_WORK window reads (output x window) a pooling forward.
#: Waking sleeping OpenMP threads for one call took 70-130 us on the 2-core VM this
#: was measured on (a 3 -> 32 channel 32x32 convolution at batch 1: 31 us on one
#: thread, 161 us on two). fastconv's default lets idle threads spin about 100 us
#: first (_env.GOMP_SPINCOUNT_DEFAULT), so the next layer's call finds them awake
#: and the conv threshold is 1 M multiply-adds; when the user makes them sleep at
#: once (OMP_WAIT_POLICY=passive alone, or GOMP_SPINCOUNT=0) it is 8 M. Measured at
#: batch 1, 2 threads, model.forward (ms): lenet5 0.19 -> 0.13, vgg_small 0.69 ->
#: 0.51, mobilenet_v2 13.2 -> 9.8, squeezenet1_1 8.9 -> 7.7 (spinning with the 8 M
#: threshold: 0.16, 0.56-0.68, 11.0-13.4, 8.1-8.7). Training at batch 64 is
#: unchanged: its passes are larger.
MIN_PARALLEL_CONV_WORK = 1 << 20 if _env.openmp_threads_spin() else 1 << 23
MIN_PARALLEL_POOL_WORK = 1 << 18


def kernel_threads(work=None, minimum=None):
    """Thread count to pass to a kernel call right now, for ``work`` operations; below
    ``minimum`` of them (default MIN_PARALLEL_WORK) one thread."""
    n = get_num_threads()  # also checks the environment, once, whatever the work
    if _state["forked_child"]:
        return 1
    if work is not None and work < (MIN_PARALLEL_WORK if minimum is None else minimum):
        return 1
    if n > 1:
        _state["used_pool"] = True
    return n


def conv_threads(work):
    """kernel_threads for a convolution pass of ``work`` multiply-adds."""
    return kernel_threads(work, MIN_PARALLEL_CONV_WORK)


def pool_threads(work):
    """kernel_threads for a pooling forward of ``work`` window reads (output x window)."""
    return kernel_threads(work, MIN_PARALLEL_POOL_WORK)


def in_forked_child():
    """True when this process is a fork child running single-threaded for safety."""
    return _state["forked_child"]


def _after_fork_in_child():
    if _state["used_pool"]:
        _state["forked_child"] = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_OPENBLAS_GET_THREADS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                         "openblas_get_num_threads")


def _loaded_openblas():
    """Paths of the OpenBLAS libraries mapped into this process (Linux: /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            fields = [line.split(None, 5) for line in f]
    except OSError:
        return []
    paths = {parts[5].strip() for parts in fields if len(parts) == 6}
    return sorted(p for p in paths if "openblas" in os.path.basename(p).lower())


def blas_info():
    """The OpenBLAS libraries loaded in this process (NumPy's, SciPy's, ...), each as a dict:
    ``library`` (its path), ``num_threads`` (what ``openblas_get_num_threads`` says, None
    when the library does not export it); plus ``thread_timeout``, the
    ``OPENBLAS_THREAD_TIMEOUT`` in the environment (OpenBLAS reads it when it loads).
    An empty list when no OpenBLAS is loaded (or on a system without /proc)."""
    out = []
    for path in _loaded_openblas():
        n = None
        try:
            lib = ctypes.CDLL(path)   # already loaded: this only looks it up
        except OSError:
            lib = None
        for name in _OPENBLAS_GET_THREADS if lib is not None else ():
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                fn.argtypes = []
                n = int(fn())
                break
        out.append({"library": path, "num_threads": n,
                    "thread_timeout": _env.openblas_thread_timeout()})
    return out


def cpu_name():
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
