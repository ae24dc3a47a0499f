"""Scalars, dtypes, arrays, random generators, the algorithm names and PyTorch's keyword
names: the validators every function uses."""

from __future__ import annotations

import functools
import numbers
import operator

import numpy as np

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
INT64_MAX = 2**63 - 1


#: The convolution algorithms every conv function accepts (``functional`` runs
#: them; ``reference`` accepts the same names and computes the one NumPy way).
ALGOS = ("auto", "im2col", "direct", "gemm", "winograd")


def as_int(value, name, minimum=1):
    """``value`` as a Python int (>= ``minimum``; ``None``: any int); bools, floats and
    other types are rejected."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool {value!r}")
    if isinstance(value, numbers.Integral):
        value = int(value)
    else:
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}") from None
    if minimum is not None and value < minimum:
        what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value}")
    return value



def as_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """``value`` as a finite Python float in the given range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    bad = (
        (low is not None and (v < low or (low_open and v == low)))
        or (high is not None and (v > high or (high_open and v == high)))
    )
    if bad:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        rng = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
        raise ValueError(f"{name} must be in {rng}, got {value!r}")
    return v


def as_dtype(dtype, name="dtype"):
    """``dtype`` as a numpy dtype, which must be float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be numpy.float32 or numpy.float64, got {dtype!r}") from None
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be numpy.float32 or numpy.float64, got {dt}")
    return dt


def make_rng(seed, name="seed"):
    """A numpy Generator from ``seed``: None, an int >= 0, a SeedSequence or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, np.random.SeedSequence):
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
            raise TypeError(
                f"{name} must be a numpy.random.Generator, a SeedSequence, an int seed or None, "
                f"got {type(seed).__name__}"
            )
        seed = as_int(seed, name, minimum=0)
    return np.random.default_rng(seed)


def spawn_seeds(seed, n):
    """``n`` independent child seeds derived from ``seed`` (None gives fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        # child seeds drawn from the generator (advances it, as any use of a shared generator)
        return [np.random.SeedSequence(int(v)) for v in seed.integers(0, 2**63, size=n)]
    if seed is not None and not isinstance(seed, np.random.SeedSequence):
        seed = as_int(seed, "seed", minimum=0)
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return ss.spawn(n)


def check_algo(algo):
    """``algo`` when it names a convolution algorithm (:data:`ALGOS`), else ValueError."""
    if not isinstance(algo, str) or algo not in ALGOS:
        raise ValueError(f"algo must be one of {ALGOS}, got {algo!r}")
    return algo


def pair(value, name, *, minimum=1):
    """Normalise an int or a pair of ints to a tuple ``(h, w)``, each >= ``minimum``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        out = (as_int(value[0], name, None), as_int(value[1], name, None))
    else:
        v = as_int(value, name, None)
        out = (v, v)
    for v in out:
        if v < minimum:
            what = "positive" if minimum == 1 else f">= {minimum}"
            raise ValueError(f"{name} must be {what}, got {value!r}")
    return out


def check_array(x, name, ndim=None):
    """Check that ``x`` is a float32/float64 ndarray of the given ndim; return it as ndarray."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if native_dtype(x.dtype) not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {x.dtype}; "
            f"convert it explicitly, e.g. {name}.astype(numpy.float32)"
        )
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array, got shape {x.shape} ({x.ndim}-d)")
    return x


def native_dtype(dtype):
    """``dtype`` in native byte order (float32 stored big-endian is still float32)."""
    return dtype.newbyteorder("=") if dtype.byteorder not in ("=", "|") else dtype


def common_dtype(**arrays):
    """Return the shared dtype of the given (non-None) arrays; mixed dtypes are a TypeError."""
    dtype = None
    first = None
    for name, a in arrays.items():
        if a is None:
            continue
        dt = native_dtype(a.dtype)
        if dtype is None:
            dtype, first = dt, name
        elif dt != dtype:
            raise TypeError(
                f"{name} has dtype {a.dtype} but {first} has dtype {dtype}; "
                "fastconv never mixes dtypes silently: cast one of them"
            )
    return dtype


def contiguous(x):
    """C-contiguous, aligned, native-byte-order view or copy of ``x`` (never written to)."""
    f = x.flags
    if f.c_contiguous and f.aligned and x.dtype.isnative:
        return x        # what np.require returns here too, without its bookkeeping
    dt = x.dtype.newbyteorder("=")
    return np.require(x, dtype=dt, requirements=["C_CONTIGUOUS", "ALIGNED"])


#: PyTorch's keyword names for the arguments of the function API (``torch.nn.functional``
#: spells them ``input``, ``weight``, ``bias``; its gradient helpers ``grad_output``).
TORCH_KEYWORDS = {"input": ("x", "cols"), "weight": ("w",), "bias": ("b",),
                  "grad_output": ("dy",), "indices": ("idx",)}


def torch_keywords(func):
    """Let ``func`` (whose arguments are named ``x`` or ``cols``, ``w``, ``b``, ``dy``,
    ``idx``) also take PyTorch's keyword names for them (:data:`TORCH_KEYWORDS`), so a
    call copied from ``torch.nn.functional`` works as written; naming one argument twice
    is a TypeError."""
    code = func.__code__
    names = code.co_varnames[:code.co_argcount]
    aliases = {t: o for t, ours in TORCH_KEYWORDS.items() for o in ours if o in names}

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        for theirs, ours in aliases.items():
            if theirs in kwargs:
                if ours in kwargs:
                    raise TypeError(f"{func.__name__}() got both {theirs!r} and {ours!r}, "
                                    "two names of the same argument")
                kwargs[ours] = kwargs.pop(theirs)
        return func(*args, **kwargs)

    spelled = ", ".join(f"``{t}=`` for ``{o}``" for t, o in aliases.items())
    wrapper.__doc__ = (func.__doc__ or "").rstrip() + (
        f"\n\n    PyTorch's keyword names are accepted too: {spelled}.\n")
    return wrapper
