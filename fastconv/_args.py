"""Argument normalisation and validation shared by the native API and the reference.

Everything a user can get wrong is checked here, in plain Python, before any
kernel runs. Both :mod:`fastconv.functional` and :mod:`fastconv.reference` use
these helpers, so the two APIs accept and reject exactly the same inputs with
the same messages.
"""

from __future__ import annotations

import functools
import numbers
import operator
from typing import NamedTuple

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
    dt = x.dtype.newbyteorder("=")
    return np.require(x, dtype=dt, requirements=["C_CONTIGUOUS", "ALIGNED"])


def out_size(size, pad_total, dilation, kernel, stride):
    """PyTorch's output-size formula: floor((H + 2p - d(k-1) - 1)/s) + 1 with pad_total = 2p."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


class ConvParams(NamedTuple):
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    groups: int
    stride: tuple
    dilation: tuple
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    P: int
    Q: int

    @property
    def x_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def w_shape(self):
        return (self.K, self.C // self.groups, self.R, self.S)

    @property
    def y_shape(self):
        return (self.N, self.K, self.P, self.Q)


def _check_overflow(name, *dims):
    total = 1
    for d in dims:
        total *= int(d)
    if total > INT64_MAX // 8:
        raise OverflowError(f"{name} of shape {tuple(dims)} has too many elements to address")
    return total


def conv_padding(padding, kernel, dilation, stride):
    """Return (top, bottom, left, right) padding for ``padding`` (int, pair, "valid", "same")."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f'padding="same" needs stride 1, got stride={stride}')
            out = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                out += [total // 2, total - total // 2]
            return tuple(out)
        raise ValueError(f'padding must be an int, a pair, "valid" or "same", got {padding!r}')
    ph, pw = pair(padding, "padding", minimum=0)
    return ph, ph, pw, pw


def conv_params(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """Validate a convolution's arguments and return its full geometry."""
    if len(x_shape) != 4:
        raise ValueError(f"x must be a 4-d array (N, C, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"w must be a 4-d array (K, C/groups, R, S), got shape {tuple(w_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    K, Cg, R, S = (int(v) for v in w_shape)
    groups = as_int(groups, "groups", None)
    if groups < 1:
        raise ValueError(f"groups must be positive, got {groups}")
    stride = pair(stride, "stride")
    dilation = pair(dilation, "dilation")
    if C == 0 or H == 0 or W == 0:
        raise ValueError(f"x must have C, H and W >= 1, got shape {tuple(x_shape)}")
    if K == 0 or R == 0 or S == 0 or Cg == 0:
        raise ValueError(f"w must have K, C/groups, R and S >= 1, got shape {tuple(w_shape)}")
    if C % groups:
        raise ValueError(f"x has {C} channels, which is not divisible by groups={groups}")
    if K % groups:
        raise ValueError(f"w has {K} output channels, which is not divisible by groups={groups}")
    if Cg * groups != C:
        raise ValueError(
            f"w has shape {tuple(w_shape)}: expected w.shape[1] == C/groups = {C // groups} "
            f"for x with C={C} and groups={groups}"
        )
    pt, pb, pl, pr = conv_padding(padding, (R, S), dilation, stride)
    P = out_size(H, pt + pb, dilation[0], R, stride[0])
    Q = out_size(W, pl + pr, dilation[1], S, stride[1])
    if P < 1 or Q < 1:
        raise ValueError(
            f"kernel {R}x{S} (dilation {dilation}) is larger than the padded input "
            f"{H + pt + pb}x{W + pl + pr}: output would be {P}x{Q}"
        )
    _check_overflow("output", N, K, P, Q)
    _check_overflow("column buffer", C, R, S, P, Q)
    return ConvParams(N, C, H, W, K, R, S, groups, stride, dilation, pt, pb, pl, pr, P, Q)


class PoolParams(NamedTuple):
    N: int
    C: int
    H: int
    W: int
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    P: int
    Q: int
    ceil_mode: bool

    @property
    def y_shape(self):
        return (self.N, self.C, self.P, self.Q)


def _pool_out(size, pad, dil, k, s, ceil_mode):
    """PyTorch's pooling output size; 0 when not even one window fits."""
    num = size + 2 * pad - (dil * (k - 1) + 1)
    out = (num + (s - 1 if ceil_mode else 0)) // s + 1     # floor division, also for num < 0
    # PyTorch: with ceil_mode the last window must start inside the input or the left padding.
    if ceil_mode and out > 0 and (out - 1) * s >= size + pad:
        out -= 1
    return max(out, 0)


def pool_params(x_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Validate a pooling's arguments and return its geometry (PyTorch's rules)."""
    if len(x_shape) != 4:
        raise ValueError(f"x must be a 4-d array (N, C, H, W), got shape {tuple(x_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    pad = pair(padding, "padding", minimum=0)
    dilation = pair(dilation, "dilation")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    if C == 0 or H == 0 or W == 0:
        raise ValueError(f"x must have C, H and W >= 1, got shape {tuple(x_shape)}")
    for p, k, d in zip(pad, kernel, dilation):
        eff = d * (k - 1) + 1
        if 2 * p > eff:
            raise ValueError(
                f"padding {pad} must be at most half the (dilated) kernel size "
                f"{tuple(d_ * (k_ - 1) + 1 for k_, d_ in zip(kernel, dilation))}"
            )
    P = _pool_out(H, pad[0], dilation[0], kernel[0], stride[0], bool(ceil_mode))
    Q = _pool_out(W, pad[1], dilation[1], kernel[1], stride[1], bool(ceil_mode))
    if P < 1 or Q < 1:
        raise ValueError(
            f"kernel_size {kernel} (dilation {dilation}) is larger than the padded input "
            f"{H + 2 * pad[0]}x{W + 2 * pad[1]}"
        )
    _check_overflow("output", N, C, P, Q)
    return PoolParams(N, C, H, W, kernel, stride, pad, dilation, P, Q, bool(ceil_mode))


def shape4(shape, name):
    """Validate a user-given 4-d shape tuple (e.g. ``x_shape`` of a backward call)."""
    try:
        dims = tuple(as_int(v, name, None) for v in shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of 4 ints, got {shape!r}") from None
    if len(dims) != 4 or any(d < 0 for d in dims):
        raise ValueError(f"{name} must be a tuple of 4 non-negative ints (N, C, H, W), got {shape!r}")
    return dims


def check_shape(a, expected, name):
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(a.shape)}")


def linear_params(x, w, b=None, dy=None):
    """Validate the arrays of a fully connected layer; return ``(dtype, N, in_features, out_features)``.

    x: (N, in_features); w: (out_features, in_features), as ``torch.nn.functional.linear``;
    b: (out_features,) or None; dy (backward only): (N, out_features).
    """
    check_array(x, "x", 2)
    check_array(w, "w", 2)
    if b is not None:
        check_array(b, "b", 1)
    if dy is not None:
        check_array(dy, "dy", 2)
    dtype = common_dtype(x=x, w=w, b=b, dy=dy)
    N, in_features = x.shape
    out_features = w.shape[0]
    if w.shape[1] != in_features:
        raise ValueError(
            f"w must have shape (out_features, {in_features}) to match x of shape {tuple(x.shape)} "
            f"(x is (N, in_features)), got {tuple(w.shape)}"
        )
    if b is not None:
        check_shape(b, (out_features,), "b")
    if dy is not None:
        check_shape(dy, (N, out_features), "dy")
    return dtype, N, in_features, out_features


def check_max_pool_windows(p):
    """Every max-pooling window must contain at least one real input element.

    With dilation, a window can straddle the input so that all its taps land in
    the padding (e.g. W=2, kernel 2, dilation 3, padding 1): there is no element
    for its index to name (PyTorch returns -inf with an out-of-range index
    there), so such a geometry is rejected.
    """
    for axis, (name, size, out) in enumerate((("height", p.H, p.P), ("width", p.W, p.Q))):
        k, s, pad, d = p.kernel[axis], p.stride[axis], p.padding[axis], p.dilation[axis]
        if d == 1:
            continue          # 2*pad <= k: every undilated window holds a real element
        start = np.arange(out, dtype=np.int64) * s - pad
        taps = start[:, None] + np.arange(k, dtype=np.int64)[None, :] * d
        hits = ((taps >= 0) & (taps < size)).any(axis=1)
        if not hits.all():
            w = int(np.argmin(hits))
            raise ValueError(
                f"max pooling window {w} along the {name} covers only padding "
                f"(kernel_size {p.kernel}, stride {p.stride}, padding {p.padding}, "
                f"dilation {p.dilation}, input {p.H}x{p.W}); reduce padding or dilation"
            )


def unfold_params(x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Geometry of an im2col (unfold): a convolution with one output channel over all of C."""
    R, S = pair(kernel_size, "kernel_size")
    return conv_params(x_shape, (1, x_shape[1] if len(x_shape) == 4 else 1, R, S),
                       stride, padding, dilation, 1)


def fold_params(cols_shape, output_size, kernel_size, stride=1, padding=0, dilation=1):
    """Validate a col2im (fold) of columns ``cols_shape`` = (N, C*R*S, L) into ``output_size``."""
    H, W = pair(output_size, "output_size")
    R, S = pair(kernel_size, "kernel_size")
    N, CRS, L = cols_shape
    if CRS % (R * S):
        raise ValueError(
            f"cols.shape[1] = {CRS} must be a multiple of the kernel area {R}*{S} = {R * S}"
        )
    if CRS == 0:
        raise ValueError(f"cols must have at least one channel's rows, got shape {tuple(cols_shape)}")
    p = unfold_params((N, CRS // (R * S), H, W), (R, S), stride, padding, dilation)
    if L != p.P * p.Q:
        raise ValueError(
            f"cols.shape[2] = {L} does not match the {p.P}x{p.Q} = {p.P * p.Q} windows of an "
            f"{H}x{W} image with these kernel_size, stride, padding and dilation"
        )
    return p


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
