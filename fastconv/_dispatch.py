"""The convolution algorithm policy: which algorithm ``algo="auto"`` runs.

:mod:`fastconv.functional` validates a call, then asks :func:`choose_algo` for
each pass (forward, weight gradient, data gradient) and :func:`finite_safe`
for the final word; :mod:`fastconv.tune` and the benchmark runner use the same
functions, so every caller sees one rule. The names the algorithms answer to
(``ALGOS``) and their check live in :mod:`fastconv._args`.

The order of a choice: an explicit ``algo`` always wins; else a choice measured
by ``fastconv tune`` for exactly this geometry, pass and dtype (read through
:mod:`fastconv._tunetable`); else the built-in rule of :func:`choose_algo`,
which also keeps to what this CPU runs well (the portable C GEMM is slow, so
without a SIMD kernel the NumPy/BLAS im2col path is taken).
"""

from __future__ import annotations

import numpy as np

from . import _kernels as K
from . import _runtime, _tunetable
from ._args import check_winograd, winograd_ok  # noqa: F401  (the rule is validation)

__all__ = [
    "conv_work",
    "conv_geom",
    "winograd_ok",
    "check_winograd",
    "choose_algo",
    "policy_state",
    "same_policy",
    "winograd_pays",
    "small_conv",
    "all_finite",
    "finite_safe",
]


def conv_work(p):
    """Multiply-adds of one convolution pass (the thread heuristic's measure of work)."""
    return p.N * p.K * (p.C // p.groups) * p.R * p.S * p.P * p.Q


def conv_geom(p, n=None):
    """The kernels' geometry struct (``_kernels.ConvGeom``) of ``ConvParams`` ``p``, for
    ``n`` images instead of ``p.N`` when given."""
    return K.ConvGeom(
        p.N if n is None else n, p.C, p.H, p.W, p.K, p.R, p.S, p.groups,
        p.stride[0], p.stride[1], p.pad_top, p.pad_bottom, p.pad_left, p.pad_right,
        p.dilation[0], p.dilation[1],
    )


#: A small conv (:func:`small_conv`): a kernel of 3x3 or more, at most
#: DIRECT_MAX_CHANNELS input and output channels, at most DIRECT_MAX_PIXELS output
#: pixels. The direct loops beat the GEMM path on it where the GEMM's share of columns
#: per thread is small: the forward pass of at most SMALL_BATCH images here (with at
#: least DIRECT_MIN_PAIRS (input, output) channel pairs, see choose_algo), and the
#: compiled plan's convs whose images are cut into channel shares
#: (fastconv.inference.plan._direct_pays).
SMALL_BATCH = 2
DIRECT_MAX_CHANNELS = 64
DIRECT_MIN_PAIRS = 1000
DIRECT_MAX_PIXELS = 1024


def small_conv(p, cin, cout):
    """``p`` is a small conv with ``cin`` input and ``cout`` output channels (per group
    or in all, as the caller's rule counts them)."""
    return (p.R * p.S >= 9 and max(cin, cout) <= DIRECT_MAX_CHANNELS
            and p.P * p.Q <= DIRECT_MAX_PIXELS)


def _small_forward(p, cg, kg):
    return p.N <= SMALL_BATCH and cg * kg >= DIRECT_MIN_PAIRS and small_conv(p, cg, kg)


def choose_algo(algo, p, backward=False, dtype=None):
    """Resolve ``algo="auto"`` for the geometry ``p``: for the forward pass, or with
    ``backward="weight"`` / ``backward="data"`` for that backward pass (``True`` means
    "data"). Any other ``algo`` is returned as is.

    With ``dtype`` given, a choice measured by ``fastconv tune`` for exactly this
    geometry, pass and dtype (:mod:`fastconv._tunetable`; one choice for every thread
    count) comes first; otherwise, the built-in rule below.

    A rule from timings of every pass on the benchmark layers and on grouped and
    few-channel variants of them (Xeon with AVX-512, 1 and 2 threads, float32): the GEMM
    path beats the direct loops once each group's product fills the micro-tile (its rows
    are the Kg output channels in the forward pass, so Kg >= 8, and Cg*Kg*R*S >= 288
    multiply-adds per output pixel), except on few-channel first layers (Cg <= 4:
    lenet_c1, cifar_c1, vgg_small's first layer, resnet_stem), whose forward and
    weight-gradient passes ran 10-50% faster in the direct loops (at 2 threads the
    GEMM's weight gradient splits a tiny C*R*S x K product), as did their data gradient
    when Cg >= 2 (8-25%; with one input channel, lenet_c1, the GEMM path was 35%
    faster). The GEMM path beats the NumPy im2col path everywhere unless it has no SIMD
    kernel on this CPU (``isa() == "generic"``: NumPy's BLAS is then ~5x faster than
    the portable C kernel). Depthwise-like layers stay direct.

    The forward pass of one or two images (``SMALL_BATCH``, ``model.forward`` at batch 1)
    through a small conv (``_small_forward``: a 3x3 or larger kernel, at most 64 input
    and output channels, at least 1,000 channel pairs, at most 1,024 output pixels) runs
    direct too: there the GEMM path's share of columns per thread is small. Direct /
    GEMM time measured (Zen 4, AVX-512, float32, median of 3 x 400 calls): batch 1 at 2
    threads vgg_small's 32 -> 32 on 32x32 0.84x, 32 -> 64 and 64 -> 64 on 16x16 0.77x and
    0.76x, LeNet-5's 20 -> 50 5x5 on 12x12 0.73x, 48 -> 64 on 32x32 0.86x; at 1 thread
    0.91-0.97x; batch 2 0.81-0.92x. Left to GEMM: 16 -> 32 on 20x20 (512 pairs,
    1.02-1.30x), 64 -> 64 on 28x28 (784 pixels, 0.91-1.05x at batch 1, 1.17x at batch 8),
    and larger batches (batch 64: 20 -> 50 1.36x). The choice depends on the batch, never
    on the thread count, so results stay bitwise the same for every thread count.
    """
    if algo != "auto":
        return algo
    if dtype is not None:
        pass_ = "forward" if not backward else ("weight" if backward == "weight" else "data")
        tuned = _tunetable.lookup(p, pass_, dtype)
        if tuned is not None:
            return tuned
    cg = p.C // p.groups
    kg = p.K // p.groups
    # Depthwise-like layers have tiny matrix products: the direct loops win.
    if cg * kg <= 4 or cg * kg * p.R * p.S < 288:
        return "direct"
    if not backward and kg < 8:
        return "direct"
    if cg <= 4 and (backward in (False, "weight") or cg >= 2):
        return "direct"
    if K.isa() == "generic":
        return "im2col"
    if not backward and _small_forward(p, cg, kg):
        return "direct"
    if winograd_pays(p):
        return "winograd"
    return "gemm"


def policy_state():
    """What :func:`choose_algo`'s answers depend on besides its arguments: the SIMD level
    (``_kernels.set_isa`` changes it) and the tuning table in use (a new object whenever it
    is read again: after ``fastconv tune`` writes it, or when the variables naming the
    file change). A caller that keeps a choice keeps this with it and asks
    :func:`same_policy` before reusing the choice."""
    return (K.isa(), _tunetable.table())


def same_policy(state):
    """True when the policy is still the one ``state`` (from :func:`policy_state`) saw."""
    isa, table = state
    return K.isa() == isa and _tunetable.table() is table


def winograd_pays(p):
    """Winograd beats the GEMM path (every pass, same timings as above) on 3x3 stride-1
    layers once both channel counts per group reach 16 and there are at least 128 output
    tiles of 4x4 to spread the filter transform over (fewer: e.g. 7x7 images in a batch
    of 8, where the transformed filters dominate). Cg*Kg <= 2**17 bounds the transformed
    filters (36*Cg*Kg elements) to 19 MB in float32, 38 MB in float64."""
    cg, kg = p.C // p.groups, p.K // p.groups
    if not winograd_ok(p) or cg < 16 or kg < 16 or cg * kg > 2**17:
        return False
    return p.N * -(-p.P // 4) * -(-p.Q // 4) >= 128


def all_finite(*arrays):
    """True when no array holds inf or NaN: one read of each, by the C scan for
    contiguous float32 / float64 arrays (the threads share a large one), else by a
    NumPy sum (no temporary; an overflowing sum of huge finite values answers False,
    which only costs the faster path)."""
    for a in arrays:
        if a.dtype in _SCANNED and a.flags.c_contiguous:
            nt = _runtime.kernel_threads(a.size, SCAN_PARALLEL_MIN)
            if not K.all_finite(a.reshape(-1), nt):
                return False
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            if not np.isfinite(np.add.reduce(a, axis=None)):
                return False
    return True


_SCANNED = (np.dtype(np.float32), np.dtype(np.float64))
#: The scan is memory-bound: one thread read a 4 MB array in 148 us, two took 165 us
#: (waking the sleeping team costs more than the second core brings), so only arrays
#: of at least this many elements are shared.
SCAN_PARALLEL_MIN = 1 << 23


def finite_safe(chosen, algo, *arrays):
    """``chosen``: the algorithms picked for one or more passes (a tuple); returned as
    is, except that with inf or NaN in the data ``auto`` does not take Winograd: its
    transforms mix every element of a tile, so one inf would spread NaN over outputs
    the reference leaves finite. The GEMM path is exact (its stride-1 backward-data
    switches to the columns method itself when a weight is not finite), so it takes
    Winograd's place. The data are scanned once, and only when it matters. An
    explicit ``algo`` is obeyed as given."""
    if algo == "auto" and "winograd" in chosen and not all_finite(*arrays):
        return tuple("gemm" if c == "winograd" else c for c in chosen)
    return chosen
