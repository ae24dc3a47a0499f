"""The compiled plan: ``plan = fastconv.compile(model); y = plan(x)``.

For each input shape (cached) the fused graph is scheduled into the C
executor's op array (``_kernels.PlanProgram``): one op per conv / linear /
pool / eltwise node, each with its epilogue, views resolved to the buffers
they view, a Concat as one copy per branch (none for a branch that the op
computing it writes straight into the concat's output: see
:func:`_concat_aliases`), and every intermediate placed in one arena by
:mod:`.memory`. ``plan(x)`` is then one call into C with the GIL
released. A Winograd conv runs "solo" (see :func:`_runs_solo`): the shared parallel
region ends before it, its kernel runs with all the threads, and the next region
starts with its epilogue and fused pool (shared, every claim would transform the
filters again, and at a batch that does not divide over the threads every share of
an image's channels would repeat the input transform; there Winograd is taken only
where it pays solo, :func:`_solo_winograd_pays`). A GEMM conv with few output pixels runs as "gemmt"
(:mod:`.gemmt`: the transposed product, its weights packed once here); a 1x1 conv
with few output channels on large planes, at a batch that does not divide over the
threads, runs as "pointwise" (:mod:`.pointwise`). Concurrent calls from several threads are safe: the op array is
read-only, and each call takes its own arena from a small pool (a new one
when all are in use, returned after the call), so calls never share memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from .. import _kernels as K
from .. import _dispatch, _runtime
from .fuse import fuse
from .gemmt import GemmtCache, gemmt_kalign, gemmt_ok, gemmt_pays, gemmt_pxsplit_pays
from .ir import Node
from .lower import lower
from .memory import plan_arena
from .pointwise import PwCache, pw_ok, pw_pays
from .qplan import QuantizedModel, QuantizedPlan
from .shapes import infer_shapes

__all__ = ["Plan", "compile"]

#: Linear layers with at most this many rows run as a GEMV (W read once for all).
GEMV_MAX_ROWS = 4
#: A thread's whole-image conv calls cover about this many output bytes, so the
#: epilogue and a fused pool find them in cache.
CHUNK_BYTES = 1 << 19
#: A conv run solo as Winograd (see _solo_winograd_pays) has at least this many output
#: and SOLO_MIN_IN input channels per group, and this many 4x4 output tiles in its batch.
SOLO_MIN_CHANNELS = 64
SOLO_MIN_IN = 16
SOLO_MIN_TILES = 36
#: A conv the stem kernel computes runs there when it has this many output channels.
STEM_MIN_K = 16
#: Input shapes whose op arrays a plan keeps.
MAX_SHAPES = 16


def compile(model, tune=False, fuse_pool=True):  # noqa: A001  (fastconv.compile, as torch.compile)
    """Compile ``model`` for inference: ``plan(x)`` returns what ``model.eval().forward(x)``
    returns (BatchNorm folded, activations / residual adds / pools fused, buffers
    preallocated per input shape, one call into C per forward). The model is not
    changed; the plan holds a copy of its weights as they are now.

    ``tune=True`` times the candidate algorithms of every convolution (depthwise, direct,
    gemm, winograd, gemmt, pointwise) and fully connected layer (gemv, gemm) on the first
    input of each shape and keeps the fastest; otherwise the built-in policy chooses.

    An int8 model (``fastconv.quantize``) compiles to a :class:`.qplan.QuantizedPlan`:
    its layers are already fused int8 kernels; the plan snapshots the weights and is
    safe to call from several threads. Its kernels have one algorithm each, so
    ``tune=True`` is refused for it.
    """
    if isinstance(model, QuantizedModel):
        if tune:
            raise ValueError("fastconv.compile: tune=True applies to float models; an int8 "
                             "model's kernels have one algorithm each (use tune=False)")
        return QuantizedPlan(model)
    return Plan(model, tune=tune, fuse_pool=fuse_pool)


def _auto_conv_algo(p, dtype):
    """The one call into the algorithm policy (:func:`fastconv._dispatch.choose_algo`)."""
    return _dispatch.choose_algo("auto", p, False, dtype)


def _depthwise_ok(p):
    """A geometry the depthwise kernel computes (csrc/conv_dw.h, fc_dw_supported): one
    filter per channel (groups == C == K), dilation 1, strides 1 or 2, at most 64 taps."""
    return (p.groups == p.C == p.K and tuple(p.dilation) == (1, 1)
            and all(s in (1, 2) for s in p.stride) and p.R * p.S <= 64)


def _stem_ok(p):
    """A geometry the stem kernel computes (csrc/conv_stem.h, fc_stem_supported): groups
    1, at most 4 input channels, dilation 1, strides 1 or 2, at most 512 taps C*R*S."""
    return (p.groups == 1 and 1 <= p.C <= 4 and tuple(p.dilation) == (1, 1)
            and all(s in (1, 2) for s in p.stride) and p.C * p.R * p.S <= 512)


def _winograd_ok(p):
    return (p.R, p.S) == (3, 3) and tuple(p.stride) == (1, 1) and tuple(p.dilation) == (1, 1)


class Plan:
    """A compiled model (see :func:`compile`). Call it like ``model.forward``."""

    def __init__(self, model, tune=False, fuse_pool=True):
        self.dtype = np.dtype(model.dtype)
        self.graph = lower(model)
        self.fused = fuse(self.graph, fuse_pool=fuse_pool)
        self.tune = bool(tune)
        self._compiled = OrderedDict()
        self._lock = threading.Lock()
        self._casts = {}
        self.gemmt_weights = GemmtCache()
        self.pw_weights = PwCache()

    def __call__(self, x):
        c = None
        if type(x) is np.ndarray and x.dtype == self.dtype:
            c = self._compiled.get(x.shape)
        if c is None:
            c = self.compiled_for(x)
        return c.run(x)

    forward = __call__

    def compiled_for(self, x):
        """The schedule for ``x``'s shape (built, and validated as the model would, once)."""
        shapes, geoms = infer_shapes(self.graph, x)
        key = shapes[self.graph.input]
        with self._lock:
            c = self._compiled.get(key)
            if c is None:
                c = _Compiled(self, shapes, geoms)
                if self.tune and c.N:
                    c = c.tuned(np.ascontiguousarray(x))
                self._compiled[key] = c
                while len(self._compiled) > MAX_SHAPES:
                    self._compiled.popitem(last=False)
            return c

    def profile(self, x, repeat=20):
        """[(op description, seconds)]: each op's median time over ``repeat`` runs (the
        executor's debug timing: thread 0's time from the end of one op to the next, so with
        several threads an op's time includes waiting for the slowest thread)."""
        return self.compiled_for(x).profile(np.ascontiguousarray(x), repeat)

    def cast(self, arr):
        """``arr`` in the plan's dtype, C-contiguous (cached per source array)."""
        if arr is None:
            return None
        key = id(arr)
        hit = self._casts.get(key)
        if hit is None or hit[0] is not arr:
            hit = (arr, np.ascontiguousarray(arr, dtype=self.dtype))
            self._casts[key] = hit
        return hit[1]

    def __repr__(self):
        return f"Plan({self.dtype}, {len(self.fused.nodes)} steps)\n{self.fused!r}"


class _Compiled:
    """One input shape's op array, arena size and arena pool."""

    def __init__(self, plan, shapes, geoms, algos=None):
        self.plan = plan
        self.shapes, self.geoms = shapes, geoms
        self.dtype = plan.dtype
        g = plan.fused
        self.x_shape = shapes[g.input]
        self.y_shape = shapes[g.output]
        self.N = self.x_shape[0] if self.x_shape else 0
        self.algos = dict(algos or {})
        self.pxsplit = set()        # gemmt convs whose images are cut by output pixels
        self._free = []
        if not self.N:
            self.prog, self.names, self.work = None, [], 0
            return
        self._schedule()

    # ---- scheduling ----------------------------------------------------------

    def _schedule(self):
        g, shapes, dt = self.plan.fused, self.shapes, self.dtype
        size = lambda v: int(np.prod(shapes[v], dtype=np.int64))  # noqa: E731
        base = {}
        for n in g.nodes:
            if n.op in ("flatten", "identity", "view"):
                base[n.output] = base.get(n.inputs[0], n.inputs[0])
        root = lambda v: base.get(v, v)  # noqa: E731
        out_root = root(g.output)
        steps = [n for n in g.nodes if n.op not in ("flatten", "identity", "view")]
        if out_root == g.input:                       # the network is a view of its input
            out_root = g.output + ":copy"
            shapes[out_root] = shapes[g.output]
            steps.append(_copy_node(g.input, out_root))
        # branches written straight into their concat's output (see _concat_aliases)
        alias = _concat_aliases(steps, root, g.input, out_root, shapes, self.geoms)

        def home(v):
            """The value whose memory ``v`` lives in, and ``v``'s offset there."""
            v, off = root(v), 0
            while v in alias:
                v, extra = alias[v]
                v, off = root(v), off + extra
            return v, off

        # lifetimes of arena values, in op indices (a concat is one op per branch copied)
        iv, ops_io, pieces_of = {}, [], []
        for n in steps:
            if n.op == "concat":
                for j, v in enumerate(n.inputs):
                    if root(v) not in alias:
                        ops_io.append(n)
                        pieces_of.append(j)
            else:
                ops_io.append(n)
                pieces_of.append(None)
        first, last = {}, {}

        def use(v, i, write=False):
            v = home(v)[0]
            if v in (g.input, out_root):
                return
            if write:
                first.setdefault(v, i)
            last[v] = max(last.get(v, i), i)

        scratch = {}
        for i, n in enumerate(ops_io):
            for v in n.inputs if n.op != "concat" else [n.inputs[pieces_of[i]]]:
                use(v, i)
            for s in n.attrs.get("epi", ()):
                if s[0] == "add":
                    use(s[1], i)
            use(n.output, i, write=True)
            if n.op == "conv" and n.attrs.get("pool") is not None:
                pre = n.attrs["pre"]
                scratch[pre] = (i, i, size(pre))
        for v in first:
            iv[v] = (first[v], last[v], size(v))
        iv.update(scratch)
        offsets, arena = plan_arena(iv, dt.itemsize)
        self.arena_size = arena

        def ref(v):
            v, off = home(v)
            if v == g.input:
                return (0, off)
            if v == out_root:
                return (1, off)
            return (2, offsets[v] + off)

        ops, names, work = [], [], 0
        for i, n in enumerate(ops_io):
            d, w = self._op(n, pieces_of[i], ref, offsets)
            ops.append(d)
            names.append(_describe(n, d))
            work += w
        self.names, self.work = names, work
        self.owners = [n.output for n in ops_io]
        self.aliased = sorted(alias)
        self.ops = ops
        self.prog = K.PlanProgram(ops, dt.itemsize, size(g.input), size(g.output), arena)

    def _epi(self, n, ref):
        out = []
        for s in n.attrs.get("epi", ()):
            if s[0] == "affine":
                out.append(("affine", self.plan.cast(s[1]), self.plan.cast(s[2]), None, 0.0, 0.0))
            elif s[0] == "add":
                out.append(("add", None, None, ref(s[1]), 0.0, 0.0))
            else:
                out.append((s[1], None, None, None, float(s[2]), float(s[3])))
        return out

    def _op(self, n, j, ref, offsets):
        shapes, dt, cast = self.shapes, self.dtype, self.plan.cast
        ys = shapes[n.output]
        if n.op == "conv":
            pre = n.attrs["pre"] if n.attrs.get("pool") is not None else n.output
            p = self.geoms[n.attrs["orig"]]
            algo = self._conv_algo(n, p)
            d = dict(kind="conv", algo=algo, N=p.N, C=p.K, L=p.P * p.Q,
                     conv=_conv_tuple(p), x=ref(n.inputs[0]), w=cast(n.attrs["w"]),
                     b=cast(n.attrs["b"]),
                     kalign=_conv_kalign(p, _runtime.get_num_threads()),
                     chunk=max(1, CHUNK_BYTES // (p.K * p.P * p.Q * dt.itemsize)),
                     epi=self._epi(n, ref), solo=_runs_solo(p, algo))
            if algo == "gemmt":
                d["wpack"] = self.plan.gemmt_weights.get(d["w"])
                d["kalign"] = gemmt_kalign(p, d["wpack"], _runtime.get_num_threads())
                d["pxsplit"] = n.output in self.pxsplit
            elif algo == "pointwise":
                d["wpack"] = self.plan.pw_weights.get(d["w"])
            elif algo == "gemm" and p.groups == 1:      # each share's weights packed once
                d["wpre"] = K.GemmWeights(d["w"], d["conv"], d["kalign"], d["chunk"],
                                          _runtime.get_num_threads())
            q = n.attrs.get("pool")
            if q is not None:
                pp = self.geoms[q.attrs["orig"]]
                d.update(y=(2, offsets[pre]), y2=ref(n.output), fused_pool=q.op,
                         pool=_pool_tuple(pp, q.attrs["count_include_pad"]))
            else:
                d["y"] = ref(n.output)
            return d, p.N * p.K * (p.C // p.groups) * p.R * p.S * p.P * p.Q
        if n.op == "linear":
            N, F = ys
            fin = shapes[n.inputs[0]][1]
            algo = self.algos.get(n.output) or ("gemv" if N <= GEMV_MAX_ROWS else "gemm")
            d = dict(kind="linear", algo=algo, N=N, C=F, L=1, in_features=fin,
                     x=ref(n.inputs[0]), y=ref(n.output), w=cast(n.attrs["w"]),
                     b=cast(n.attrs["b"]), epi=self._epi(n, ref))
            return d, N * F * fin
        if n.op in ("maxpool", "avgpool"):
            pp = self.geoms[n.attrs["orig"]]
            d = dict(kind=n.op, N=pp.N, C=pp.C, L=pp.P * pp.Q, x=ref(n.inputs[0]),
                     y=ref(n.output), pool=_pool_tuple(pp, n.attrs["count_include_pad"]),
                     epi=self._epi(n, ref))
            return d, pp.N * pp.C * pp.P * pp.Q * pp.kernel[0] * pp.kernel[1]
        if n.op == "gap":
            xs = shapes[n.inputs[0]]
            d = dict(kind="gap", N=xs[0], C=xs[1], L=1, in_features=xs[2] * xs[3],
                     x=ref(n.inputs[0]), y=ref(n.output), epi=self._epi(n, ref))
            return d, int(np.prod(xs))
        if n.op == "eltwise":
            C = ys[1] if len(ys) > 1 else 1
            L = int(np.prod(ys[2:], dtype=np.int64)) if len(ys) > 2 else 1
            d = dict(kind="epi", N=ys[0], C=C, L=L, x=ref(n.inputs[0]), y=ref(n.output),
                     epi=self._epi(n, ref))
            return d, int(np.prod(ys))
        if n.op == "concat":
            ax = self.geoms[n.attrs["orig"]]
            outer = int(np.prod(ys[:ax], dtype=np.int64))
            inner = int(np.prod(ys[ax + 1:], dtype=np.int64))
            off = sum(shapes[v][ax] for v in n.inputs[:j])
            src = shapes[n.inputs[j]]
            slot, o = ref(n.output)
            d = dict(kind="copy", N=outer, C=1, L=1, in_features=src[ax] * inner,
                     ld=ys[ax] * inner, x=ref(n.inputs[j]), y=(slot, o + off * inner))
            return d, outer * src[ax] * inner
        raise ValueError(f"cannot schedule {n.op}")  # pragma: no cover

    def _conv_algo(self, n, p):
        algo = self.algos.get(n.output)
        if algo is None:
            algo = _auto_conv_algo(p, self.dtype)
            if algo == "im2col":            # no SIMD GEMM on this CPU: the plan has no NumPy path
                algo = "gemm"
            if _solo(p) and _winograd_ok(p):
                # the executor would split an image's output channels over the threads, and
                # each share would repeat Winograd's input transform (at batch 1 about as
                # much as the products); so Winograd runs solo here, or not at all
                algo = "winograd" if _solo_winograd_pays(p) else \
                    ("direct" if algo == "winograd" else algo)
            nth = _runtime.get_num_threads()
            nr, share = K.GemmtWeights.kernel_nr(self.dtype.itemsize), min(p.K, _conv_kalign(p, nth))
            if algo == "gemm" and gemmt_pays(p, nr, share, nth):
                algo = "gemmt"
            elif algo == "gemm" and gemmt_pxsplit_pays(p, nr, share, nth,
                                                       n.attrs.get("pool") is not None):
                algo = "gemmt"
                self.pxsplit.add(n.output)      # images cut by output pixels
            if algo == "direct" and _depthwise_ok(p):
                algo = "depthwise"      # the direct kernel for one filter per channel, epilogue fused
            if algo in ("gemm", "gemmt") and pw_pays(p, n.attrs.get("pool") is not None, nth):
                algo = "pointwise"
            if algo == "gemm" and _direct_pays(p):
                algo = "direct"
            if _stem_pays(p):
                algo = "stem"
        if algo == "winograd" and (not _winograd_ok(p) or not _finite(n.attrs["w"])):
            algo = "gemm"
        if algo == "gemmt" and not gemmt_ok(p):
            algo = "gemm"
        if algo == "pointwise" and not pw_ok(p, n.attrs.get("pool") is not None):
            algo = "gemm"
        return algo

    # ---- running -------------------------------------------------------------

    def run(self, x, op_seconds=None):
        x = np.ascontiguousarray(x)
        y = np.empty(self.y_shape, self.dtype)
        if not self.N:
            return y
        try:
            arena = self._free.pop()
        except IndexError:
            arena = np.empty(max(self.arena_size, 1), self.dtype)
        try:
            K.plan_run(self.prog, x.reshape(-1), y.reshape(-1), arena,
                       _runtime.kernel_threads(self.work), op_seconds)
        finally:
            self._free.append(arena)
        return y

    def profile(self, x, repeat=20):
        if not self.N:
            return []
        t = np.empty((max(1, repeat), len(self.ops)))
        for r in range(len(t)):
            self.run(x, t[r])
        return list(zip(self.names, np.median(t, axis=0).tolist()))

    def tuned(self, x, repeat=10):
        """A copy whose conv / linear algorithms are the fastest measured on ``x``."""
        g = self.plan.fused
        cands = {}
        for n in g.nodes:
            if n.op == "conv":
                p = self.geoms[n.attrs["orig"]]
                cands[n.output] = (["depthwise"] if _depthwise_ok(p) else []) \
                    + (["stem"] if _stem_ok(p) else []) + ["direct", "gemm"] \
                    + (["winograd"] if _winograd_ok(p) else []) + (["gemmt"] if gemmt_ok(p) else []) \
                    + (["pointwise"] if pw_ok(p, n.attrs.get("pool") is not None) else [])
            elif n.op == "linear":
                cands[n.output] = ["gemv", "gemm"]
        best = {}
        for r in range(max(len(c) for c in cands.values()) if cands else 0):
            forced = {v: c[r] for v, c in cands.items() if r < len(c)}
            if not forced:
                break
            trial = _Compiled(self.plan, self.shapes, self.geoms, forced)
            trial.run(x)
            for name, sec in zip(trial.owners, [s for _, s in trial.profile(x, repeat)]):
                if name in forced and (name not in best or sec < best[name][1]):
                    best[name] = (forced[name], sec)
        return _Compiled(self.plan, self.shapes, self.geoms, {v: a for v, (a, _) in best.items()})


def _solo(p):
    """A conv whose batch does not divide over the threads (so the executor would cut
    images into channel shares) and that is not grouped: there Winograd is taken only
    where it pays solo (:func:`_solo_winograd_pays`; at every batch it runs solo,
    :func:`_runs_solo`)."""
    nth = _runtime.get_num_threads()
    return nth > 1 and p.N % nth != 0 and p.groups == 1


def _runs_solo(p, algo):
    """Every Winograd conv runs solo when there are threads to share, whatever the batch.
    Shared, whole images are claimed a few at a time and every claim's kernel call
    transforms the filters again (256 -> 256 3x3: 9.4 MB of transformed filters per
    call) and runs its own single-threaded blocking; solo, the filters are transformed
    once and the tiles shared. Measured on the full-width AVX-512 host (float32, 2
    threads, the same plan with and without, alternated in one process; the same bits):
    resnet18 at batch 8 0.863x the time (its 14x14 convs 7.0-7.6 -> 2.8-3.0 ms, the
    56x56 ones 3.2-3.6 -> 2.1-2.4 ms), squeezenet1_1 at batch 8 0.858x, vgg_small at
    batch 64 0.840x, resnet_small at batch 64 0.942x; at batch 2 resnet18 0.977x and
    squeezenet1_1 0.965-1.002x, at batch 4 0.93-0.95x. A batch that does not divide
    over the threads already ran Winograd solo (:func:`_solo`)."""
    return algo == "winograd" and p.groups == 1 and _runtime.get_num_threads() > 1


def _solo_winograd_pays(p):
    """Winograd run solo (all threads, outside the shared region) beats the shared
    direct / GEMM conv at a batch that does not divide over the threads when it has at
    least SOLO_MIN_CHANNELS output and SOLO_MIN_IN input channels per group and at least
    SOLO_MIN_TILES output tiles of 4x4. Measured at batch 1, 2 threads (float32, per-op
    profile): 64 -> 64 channels 56x56 0.6-0.9x the direct conv's time, 128 -> 128 28x28
    0.6-1.0x the GEMM's; 256 -> 256 14x14 (16 tiles) 1.1-2.2x, 512 -> 512 7x7 2-2.6x.
    SqueezeNet's 16 -> 64 at 55x55 and 32 -> 128 at 27x27 measured 1.2-1.4x while idle
    threads slept at once (a solo op's own parallel region woke them); since they spin
    briefly (fastconv._env.GOMP_SPINCOUNT_DEFAULT) the tuner measures them at 0.78-0.88x
    per op, and the whole squeezenet1_1 at batch 1 took 0.94x the time (A/B interleaved
    call by call in one process)."""
    cg, kg = p.C // p.groups, p.K // p.groups
    if cg < SOLO_MIN_IN or kg < SOLO_MIN_CHANNELS or cg * kg > 2**17:
        return False
    return p.N * -(-p.P // 4) * -(-p.Q // 4) >= SOLO_MIN_TILES


def _direct_pays(p):
    """The direct conv instead of the GEMM one for a small conv whose images are cut into
    channel shares (:func:`_solo`): :func:`fastconv._dispatch.small_conv` counting all
    the input and output channels (a kernel of 3x3 or more, at most 64 of each, at most
    1,024 output pixels). Measured in the plan, per-op profile, float32, 2 threads (median of 3 x 100
    runs, direct / GEMM time): batch 1 vgg_small's 32 -> 32 3x3 on 32x32 0.90x, 32 -> 64
    and 64 -> 64 on 16x16 0.80x and 0.86x, LeNet-5's 20 -> 50 5x5 on 8x8 0.86x; batch 3
    vgg_small's 32 -> 64 0.65x. Where it did not pay: 1x1 convs (SqueezeNet's 384 -> 64
    on 13x13 1.7x), more channels (48 -> 192 3x3 on 13x13 1.2x, 64 -> 256 1.3x), larger
    planes (ResNet-18's 64 -> 64 on 56x56 1.1x), and whole-image units (LeNet-5's
    20 -> 50 at batch 4 1.06x, at batch 64 1.07x)."""
    return _solo(p) and _dispatch.small_conv(p, p.C, p.K)


def _stem_pays(p):
    """The stem kernel (few input channels, the output pixels along the vector lanes)
    where it computes the geometry and the output channels come in whole blocks of 8
    (its widest tile), at least STEM_MIN_K of them. Measured in the plan against the
    direct conv (the policy's choice there before), first-conv per-op time, float32,
    2 threads, batch 1 / 8, A/B interleaved on a loaded 2-core machine (best of 11):
    MobileNet-v2's 3 -> 32 3x3/2 +clip 0.69x / 0.73x, SqueezeNet's 3 -> 64 3x3/2
    +relu +maxpool 0.85x / 0.84x, ResNet-18's 3 -> 64 7x7/2 +relu +maxpool 0.88x / 0.47x
    (the batch-8 figure is noisy), vgg_small's 3 -> 32 3x3 on 32x32 0.86x / 0.86x (one
    thread 0.88x; batch 64 0.66x). LeNet-5's 1 -> 20 5x5 on 28x28 (20 = 8 + 8 + 4, a
    thread's share of 10 runs 8 + 1 + 1) 1.15x at batch 1: stays direct."""
    return _stem_ok(p) and p.K >= STEM_MIN_K and p.K % 8 == 0


def _finite(a):
    return bool(np.isfinite(a).all())


def _concat_aliases(steps, root, x_name, out_root, shapes, axes):
    """{branch value: (concat output, offset in elements)} for the concat branches that
    are written in place: when everything before a concat's axis has size 1 (a channel
    concat at batch 1), each branch is one contiguous block of the output, so the op
    that computes a branch can write it there and the concat copies nothing. A branch
    qualifies when it is computed by an op of the plan (not the network input, not a
    view, not the network output) and the concat is its only reader."""
    readers = {}
    for n in steps:
        srcs = list(n.inputs) + [s[1] for s in n.attrs.get("epi", ()) if s[0] == "add"]
        for v in srcs:
            readers[root(v)] = readers.get(root(v), 0) + 1
    made = {n.output for n in steps}
    alias = {}
    for n in steps:
        if n.op != "concat":
            continue
        ys, ax = shapes[n.output], axes[n.attrs["orig"]]
        if int(np.prod(ys[:ax], dtype=np.int64)) != 1:
            continue
        inner = int(np.prod(ys[ax + 1:], dtype=np.int64))
        off = 0
        for v in n.inputs:
            if (v == root(v) and v in made and v not in (x_name, out_root)
                    and readers.get(v) == 1):
                alias[v] = (n.output, off * inner)
            off += shapes[v][ax]
    return alias


def _copy_node(src, dst):
    return Node("eltwise", [src], dst, {"epi": []})


def _kalign(K, parts):
    """Channels per block when an image's K output channels are split in ``parts`` units
    (the executor's units of a batch-1 conv): the largest of 16, 8, 4, 2, 1 that shares K
    out within 10% of evenly (K = 0: grouped, split by groups)."""
    if K <= 0:
        return 1
    for a in (16, 8, 4, 2, 1):
        blocks = -(-K // a)
        if -(-blocks // parts) * a <= 1.1 * K / parts or a == 1:
            return a
    return 1


def _conv_kalign(p, nth):
    """Channels per block of a conv whose images the executor splits by output channel:
    blocks of _kalign's alignment, grouped so that an image is nth shares (one per
    thread: every share repeats the input's im2col / packing, and the GEMM on a larger
    share of channels runs faster; whole-network time at 2 threads against shares of
    half as many channels, batch 1 / batch 3: lenet5 0.91x / 0.83x, vgg_small 0.88x /
    0.93x, resnet18 0.92x / 0.95x, squeezenet1_1 0.88x / 0.91x, mobilenet_v2 0.90x /
    0.89x). Grouped convs are split by group (1)."""
    if p.groups != 1:
        return 1
    a = _kalign(p.K, nth)
    blocks = -(-p.K // a)                 # ceil(K / a)
    return a * -(-blocks // nth)          # ceil(blocks / nth) blocks per share


def _conv_tuple(p):
    return (p.N, p.C, p.H, p.W, p.K, p.R, p.S, p.groups, p.stride[0], p.stride[1],
            p.pad_top, p.pad_bottom, p.pad_left, p.pad_right, p.dilation[0], p.dilation[1])


def _pool_tuple(p, count_include_pad):
    return (p.N, p.C, p.H, p.W, p.kernel[0], p.kernel[1], p.stride[0], p.stride[1],
            p.padding[0], p.padding[1], p.dilation[0], p.dilation[1], p.ceil_mode,
            bool(count_include_pad))


def _describe(n, d):
    s = d["kind"]
    if d["kind"] in ("conv", "linear"):
        s += f"[{d['algo']}] {n.attrs.get('name', '')}"
    if d.get("fused_pool"):
        s += f" +{d['fused_pool']}"
    steps = [e[0] for e in d.get("epi", ())]
    if steps:
        s += " +" + "+".join(steps)
    return s
