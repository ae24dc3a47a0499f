# cython: language_level=3
"""Thin Cython bindings over the C kernels in csrc/.

One wrapper per C entry point (convolution: one per pass, the algorithm as an
int, ALGO_ID). Each takes a geometry object and flat C-contiguous buffers
(``arr.reshape(-1)`` of a C-contiguous array), checks that every buffer has
exactly the length the geometry implies (so the C code can never index
outside what Python handed it), calls C with the GIL released, and turns the
returned fc_status into a Python exception. Argument checking that users see
lives in fastconv/_args.py and fastconv/functional.py; the C entry points
check the geometry (and the algorithm) once more, defensively.
"""

from libc.stdint cimport int64_t

ctypedef fused real:
    float
    double


cdef int _check(fc_status st, str what) except -1:
    if st == FC_OK:
        return 0
    if st == FC_ENOMEM:
        raise MemoryError(f"{what}: could not allocate the kernel's workspace")
    if st == FC_EOVERFLOW:
        raise OverflowError(f"{what}: a size does not fit in a 64-bit integer")
    raise ValueError(f"{what}: invalid arguments (status {<int>st})")


cdef int _need(Py_ssize_t got, int64_t want, str name) except -1:
    if got != want:
        raise ValueError(f"buffer {name} has {got} elements, the geometry needs {want}")
    return 0


cdef class ConvGeom:
    """Validated convolution geometry (wraps fc_conv_geom)."""
    cdef fc_conv_geom g

    def __cinit__(self, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                  int64_t S, int64_t groups, int64_t stride_h, int64_t stride_w,
                  int64_t pad_top, int64_t pad_bottom, int64_t pad_left, int64_t pad_right,
                  int64_t dil_h, int64_t dil_w):
        _check(fc_conv_geom_init(&self.g, N, C, H, W, K, R, S, groups, stride_h, stride_w,
                                 pad_top, pad_bottom, pad_left, pad_right, dil_h, dil_w),
               "convolution geometry")

    @property
    def P(self):
        return self.g.P

    @property
    def Q(self):
        return self.g.Q

    def with_batch(self, int64_t n):
        """A copy of this geometry for a batch of n images."""
        cdef ConvGeom out = ConvGeom.__new__(ConvGeom, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                             0, 0, 0, 0, 1, 1)
        out.g = self.g
        out.g.N = n
        return out

    cdef int64_t x_size(self):
        return self.g.N * self.g.C * self.g.H * self.g.W

    cdef int64_t y_size(self):
        return self.g.N * self.g.K * self.g.P * self.g.Q

    cdef int64_t w_size(self):
        return self.g.K * (self.g.C // self.g.groups) * self.g.R * self.g.S

    cdef int64_t cols_size(self):
        return self.g.N * self.g.C * self.g.R * self.g.S * self.g.P * self.g.Q


cdef class PoolGeom:
    """Validated pooling geometry (wraps fc_pool_geom)."""
    cdef fc_pool_geom g

    def __cinit__(self, int64_t N, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                  int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                  int64_t dil_h, int64_t dil_w, bint ceil_mode, bint count_include_pad):
        _check(fc_pool_geom_init(&self.g, N, C, H, W, kh, kw, stride_h, stride_w,
                                 pad_h, pad_w, dil_h, dil_w, ceil_mode, count_include_pad),
               "pooling geometry")

    @property
    def P(self):
        return self.g.P

    @property
    def Q(self):
        return self.g.Q

    @staticmethod
    def scatter(int64_t N, int64_t C, int64_t H, int64_t W, int64_t P, int64_t Q):
        """Geometry for max_pool2d_backward given only the plane sizes (the
        scatter reads N, C, H, W, P, Q and nothing else)."""
        if P < 1 or Q < 1:
            raise ValueError(f"dy must have P, Q >= 1, got {P}x{Q}")
        cdef PoolGeom out = PoolGeom(N, C, H, W, 1, 1, 1, 1, 0, 0, 1, 1, False, True)
        out.g.P = P
        out.g.Q = Q
        return out

    cdef int64_t x_size(self):
        return self.g.N * self.g.C * self.g.H * self.g.W

    cdef int64_t y_size(self):
        return self.g.N * self.g.C * self.g.P * self.g.Q


# ---- runtime ---------------------------------------------------------------

def openmp_enabled():
    return bool(fc_openmp_enabled())

def max_threads():
    return fc_max_threads()

def num_procs():
    return fc_num_procs()

def workspace_cached():
    """Bytes of kernel workspace kept for reuse (see fc_workspace_cached)."""
    return fc_workspace_cached()

def workspace_release():
    """Free the kept kernel workspace; returns the bytes freed."""
    return fc_workspace_release()

def cpu_features():
    return {"avx2": bool(fc_cpu_has_avx2()), "avx512": bool(fc_cpu_has_avx512())}


# ---- ISA level (csrc/runtime.c) --------------------------------------------

_ISA_LEVELS = {"generic": FC_ISA_GENERIC, "avx2": FC_ISA_AVX2, "avx512": FC_ISA_AVX512}


def isa():
    """The SIMD level every kernel uses now (the GEMM, direct, Winograd and pooling
    kernels alike): "avx512", "avx2" or "generic"."""
    return fc_isa_name(fc_isa_level()).decode()


def set_isa(name):
    """Use the SIMD level ``name`` (capped by what this CPU supports); returns the
    level now in use. For tests and benchmarks (FASTCONV_ISA sets the start value)."""
    if name not in _ISA_LEVELS:
        raise ValueError(f"isa must be one of {tuple(_ISA_LEVELS)}, got {name!r}")
    fc_set_isa(_ISA_LEVELS[name])
    return isa()


# ---- im2col / col2im -------------------------------------------------------

def im2col(ConvGeom geom, const real[::1] x, real[::1] cols, int nthreads):
    _need(x.shape[0], geom.x_size(), "x")
    _need(cols.shape[0], geom.cols_size(), "cols")
    if geom.g.N == 0:
        return
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_im2col_f32(&geom.g, &x[0], &cols[0], nthreads)
        else:
            st = fc_im2col_f64(&geom.g, &x[0], &cols[0], nthreads)
    _check(st, "im2col")


def col2im(ConvGeom geom, const real[::1] cols, real[::1] x, int nthreads):
    _need(x.shape[0], geom.x_size(), "x")
    _need(cols.shape[0], geom.cols_size(), "cols")
    if geom.g.N == 0:
        return
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_col2im_f32(&geom.g, &cols[0], &x[0], nthreads)
        else:
            st = fc_col2im_f64(&geom.g, &cols[0], &x[0], nthreads)
    _check(st, "col2im")


# ---- convolution: one wrapper per pass, the algorithm as an int -------------

ALGO_DIRECT = FC_ALGO_DIRECT
ALGO_GEMM = FC_ALGO_GEMM
ALGO_WINOGRAD = FC_ALGO_WINOGRAD
#: The algorithms with C kernels for all three passes, by the name functional.py uses.
ALGO_ID = {"direct": ALGO_DIRECT, "gemm": ALGO_GEMM, "winograd": ALGO_WINOGRAD}
_ALGO_NAME = {v: k for k, v in ALGO_ID.items()}


cdef int _check_conv(fc_status st, str pass_name, int algo) except -1:
    """_check for a convolution pass, naming the algorithm (only formatted on error)."""
    if st != FC_OK:
        _check(st, f"conv2d {pass_name} ({_ALGO_NAME.get(algo, f'algo {algo}')})")
    return 0


def conv2d_fwd(int algo, ConvGeom geom, const real[::1] x, const real[::1] w,
               const real[::1] b, real[::1] y, int nthreads):
    """y = conv(x, w) + b by algorithm ``algo`` (ALGO_DIRECT, ALGO_GEMM, ALGO_WINOGRAD).
    b may be an empty buffer, meaning no bias; x and y are empty when the batch is.
    The C entry point checks the geometry and the algorithm (ValueError for an unknown
    algo, and for Winograd off 3x3 / stride 1 / dilation 1: functional.py checks
    that with a clear message first)."""
    _need(x.shape[0], geom.x_size(), "x")
    _need(w.shape[0], geom.w_size(), "w")
    _need(y.shape[0], geom.y_size(), "y")
    if b.shape[0] != 0:
        _need(b.shape[0], geom.g.K, "b")
    cdef const real *xp = &x[0] if x.shape[0] else NULL
    cdef const real *bp = &b[0] if b.shape[0] else NULL
    cdef real *yp = &y[0] if y.shape[0] else NULL
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_conv2d_fwd_f32(&geom.g, algo, xp, &w[0], bp, yp, nthreads)
        else:
            st = fc_conv2d_fwd_f64(&geom.g, algo, xp, &w[0], bp, yp, nthreads)
    _check_conv(st, "forward", algo)


def conv2d_bwd_data(int algo, ConvGeom geom, const real[::1] dy, const real[::1] w,
                    real[::1] dx, int nthreads):
    """dx = conv_transpose(dy, w) by algorithm ``algo``; dx is overwritten."""
    _need(dx.shape[0], geom.x_size(), "dx")
    _need(w.shape[0], geom.w_size(), "w")
    _need(dy.shape[0], geom.y_size(), "dy")
    cdef const real *dyp = &dy[0] if dy.shape[0] else NULL
    cdef real *dxp = &dx[0] if dx.shape[0] else NULL
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_conv2d_bwd_data_f32(&geom.g, algo, dyp, &w[0], dxp, nthreads)
        else:
            st = fc_conv2d_bwd_data_f64(&geom.g, algo, dyp, &w[0], dxp, nthreads)
    _check_conv(st, "backward-data", algo)


def conv2d_bwd_weight(int algo, ConvGeom geom, const real[::1] dy, const real[::1] x,
                      real[::1] dw, real[::1] db, int nthreads):
    """dw (and db) by algorithm ``algo``, both overwritten. db may be an empty buffer,
    meaning no bias gradient."""
    _need(x.shape[0], geom.x_size(), "x")
    _need(dw.shape[0], geom.w_size(), "dw")
    _need(dy.shape[0], geom.y_size(), "dy")
    if db.shape[0] != 0:
        _need(db.shape[0], geom.g.K, "db")
    cdef const real *dyp = &dy[0] if dy.shape[0] else NULL
    cdef const real *xp = &x[0] if x.shape[0] else NULL
    cdef real *dbp = &db[0] if db.shape[0] else NULL
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_conv2d_bwd_weight_f32(&geom.g, algo, dyp, xp, &dw[0], dbp, nthreads)
        else:
            st = fc_conv2d_bwd_weight_f64(&geom.g, algo, dyp, xp, &dw[0], dbp, nthreads)
    _check_conv(st, "backward-weight", algo)


# ---- Winograd tile size ----------------------------------------------------

def winograd_tile(m=None):
    """The Winograd output tile size (4: F(4x4,3x3), 2: F(2x2,3x3)). With ``m``,
    set it for later calls (0 restores the default) and return the previous one.
    Process-wide; for tests and benchmarks."""
    if m is None:
        return fc_winograd_get_tile()
    if m not in (0, 2, 4):
        raise ValueError(f"winograd tile must be 2 or 4 (or 0 for the default), got {m!r}")
    return fc_winograd_set_tile(m)


# ---- GEMM (tests and functional.linear) ------------------------------------

def gemm(bint trans_a, bint trans_b, int64_t M, int64_t N, int64_t K, const real[::1] a,
         int64_t lda, const real[::1] b, int64_t ldb, real beta, real[::1] c, int64_t ldc,
         int nthreads):
    """C = op(A) op(B) + beta C on flat row-major buffers (fc_gemm; functional.linear uses it)."""
    if M < 0 or N < 0 or K < 0:
        raise ValueError(f"gemm: M, N, K must be >= 0, got {M}, {N}, {K}")
    # Every element the kernel may touch must lie inside the buffers.
    if M and N:
        if ldc < N or (M - 1) * ldc + N > c.shape[0]:
            raise ValueError(f"gemm: c has {c.shape[0]} elements, too few for {M}x{N} with ldc {ldc}")
        if K:
            ra, ca = (K, M) if trans_a else (M, K)
            rb, cb = (N, K) if trans_b else (K, N)
            if lda < ca or (ra - 1) * lda + ca > a.shape[0]:
                raise ValueError(f"gemm: a has {a.shape[0]} elements, too few for {ra}x{ca} with lda {lda}")
            if ldb < cb or (rb - 1) * ldb + cb > b.shape[0]:
                raise ValueError(f"gemm: b has {b.shape[0]} elements, too few for {rb}x{cb} with ldb {ldb}")
    if M == 0 or N == 0:
        return
    cdef const real *ap = &a[0] if K else NULL
    cdef const real *bp = &b[0] if K else NULL
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_gemm_f32(trans_a, trans_b, M, N, K, ap, lda, bp, ldb, beta, &c[0], ldc,
                             nthreads)
        else:
            st = fc_gemm_f64(trans_a, trans_b, M, N, K, ap, lda, bp, ldb, beta, &c[0], ldc,
                             nthreads)
    _check(st, "gemm")


# ---- pooling ---------------------------------------------------------------

def maxpool2d_fwd(PoolGeom geom, const real[::1] x, real[::1] y, int64_t[::1] idx, int nthreads):
    _need(x.shape[0], geom.x_size(), "x")
    _need(y.shape[0], geom.y_size(), "y")
    _need(idx.shape[0], geom.y_size(), "idx")
    if geom.g.N == 0:
        return
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_maxpool2d_fwd_f32(&geom.g, &x[0], &y[0], &idx[0], nthreads)
        else:
            st = fc_maxpool2d_fwd_f64(&geom.g, &x[0], &y[0], &idx[0], nthreads)
    _check(st, "max_pool2d")


def maxpool2d_bwd(PoolGeom geom, const real[::1] dy, const int64_t[::1] idx, real[::1] dx,
                  int nthreads):
    _need(dx.shape[0], geom.x_size(), "dx")
    _need(dy.shape[0], geom.y_size(), "dy")
    _need(idx.shape[0], geom.y_size(), "idx")
    if geom.g.N == 0:
        return
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_maxpool2d_bwd_f32(&geom.g, &dy[0], &idx[0], &dx[0], nthreads)
        else:
            st = fc_maxpool2d_bwd_f64(&geom.g, &dy[0], &idx[0], &dx[0], nthreads)
    if st == FC_EINVAL:
        raise ValueError("max_pool2d_backward: idx holds an index outside [0, H*W)")
    _check(st, "max_pool2d_backward")


def avgpool2d_fwd(PoolGeom geom, const real[::1] x, real[::1] y, int nthreads):
    _need(x.shape[0], geom.x_size(), "x")
    _need(y.shape[0], geom.y_size(), "y")
    if geom.g.N == 0:
        return
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_avgpool2d_fwd_f32(&geom.g, &x[0], &y[0], nthreads)
        else:
            st = fc_avgpool2d_fwd_f64(&geom.g, &x[0], &y[0], nthreads)
    _check(st, "avg_pool2d")


def avgpool2d_bwd(PoolGeom geom, const real[::1] dy, real[::1] dx, int nthreads):
    _need(dx.shape[0], geom.x_size(), "dx")
    _need(dy.shape[0], geom.y_size(), "dy")
    if geom.g.N == 0:
        return
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_avgpool2d_bwd_f32(&geom.g, &dy[0], &dx[0], nthreads)
        else:
            st = fc_avgpool2d_bwd_f64(&geom.g, &dy[0], &dx[0], nthreads)
    _check(st, "avg_pool2d_backward")


# ---- elementwise -----------------------------------------------------------

def relu_fwd(const real[::1] x, real[::1] y, int nthreads):
    _need(y.shape[0], x.shape[0], "y")
    if x.shape[0] == 0:
        return
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_relu_fwd_f32(x.shape[0], &x[0], &y[0], nthreads)
        else:
            st = fc_relu_fwd_f64(x.shape[0], &x[0], &y[0], nthreads)
    _check(st, "relu")


def relu_bwd(const real[::1] dy, const real[::1] x, real[::1] dx, int nthreads):
    _need(x.shape[0], dy.shape[0], "x")
    _need(dx.shape[0], dy.shape[0], "dx")
    if dy.shape[0] == 0:
        return
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_relu_bwd_f32(dy.shape[0], &dy[0], &x[0], &dx[0], nthreads)
        else:
            st = fc_relu_bwd_f64(dy.shape[0], &dy[0], &x[0], &dx[0], nthreads)
    _check(st, "relu_backward")


def bias_add(int64_t N, int64_t K, int64_t L, const real[::1] b, real[::1] y, int nthreads):
    _need(b.shape[0], K, "b")
    _need(y.shape[0], N * K * L, "y")
    if y.shape[0] == 0:
        return
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_bias_add_f32(N, K, L, &b[0], &y[0], nthreads)
        else:
            st = fc_bias_add_f64(N, K, L, &b[0], &y[0], nthreads)
    _check(st, "bias add")


def bias_grad(int64_t N, int64_t K, int64_t L, const real[::1] dy, real[::1] db, int nthreads):
    _need(db.shape[0], K, "db")
    _need(dy.shape[0], N * K * L, "dy")
    if K == 0:
        return
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_bias_grad_f32(N, K, L, &dy[0] if dy.shape[0] else NULL, &db[0], nthreads)
        else:
            st = fc_bias_grad_f64(N, K, L, &dy[0] if dy.shape[0] else NULL, &db[0], nthreads)
    _check(st, "bias gradient")


cdef extern from *:
    """
    #ifndef FASTCONV_BUILD_CC
    #define FASTCONV_BUILD_CC "unknown"
    #endif
    #if defined(__clang__)
    #define FC_CC_VERSION "clang " __clang_version__
    #elif defined(__GNUC__)
    #define FC_CC_VERSION "gcc " __VERSION__
    #else
    #define FC_CC_VERSION FASTCONV_BUILD_CC
    #endif
    """
    const char *FC_CC_VERSION


def build_compiler():
    """The compiler that built the extension, with its version."""
    return FC_CC_VERSION.decode()


# ---- compiled inference plan (csrc/plan.h) ---------------------------------

from libc.stdlib cimport calloc, free
from libc.string cimport memset

_PLAN_KINDS = {"conv": FC_PLAN_CONV, "linear": FC_PLAN_LINEAR, "maxpool": FC_PLAN_MAXPOOL,
               "avgpool": FC_PLAN_AVGPOOL, "gap": FC_PLAN_GAP, "epi": FC_PLAN_EPI,
               "copy": FC_PLAN_COPY}
_PLAN_ALGOS = {"direct": FC_PLAN_DIRECT, "gemm": FC_PLAN_GEMM, "winograd": FC_PLAN_WINOGRAD,
               "gemv": FC_PLAN_GEMV}
_PLAN_EPIS = {"affine": FC_EPI_AFFINE, "bias": FC_EPI_BIAS, "add": FC_EPI_ADD,
              "relu": FC_EPI_RELU, "leaky_relu": FC_EPI_LEAKY, "clip": FC_EPI_CLIP,
              "sigmoid": FC_EPI_SIGMOID, "tanh": FC_EPI_TANH}


cdef class PlanProgram:
    """The op array of a compiled plan (fc_plan_op, owned here) for one input shape.

    ``ops``: a list of dicts (fastconv.inference.plan builds them). Every buffer
    reference is ``(slot, offset, elements)``, slot 0 the input, 1 the output, 2
    the arena; the extents each op touches are recomputed here from its geometry
    and checked against the slot sizes, so the C executor can never index outside
    the buffers it is given. Weight arrays are kept alive by this object."""
    cdef fc_plan_op *ops
    cdef readonly Py_ssize_t nops
    cdef readonly int itemsize
    cdef readonly int64_t x_size, y_size, arena_size
    cdef list _keep

    def __cinit__(self, list ops, int itemsize, int64_t x_size, int64_t y_size,
                  int64_t arena_size):
        if itemsize not in (4, 8):
            raise ValueError(f"plan itemsize must be 4 or 8, got {itemsize}")
        self.itemsize = itemsize
        self.x_size, self.y_size, self.arena_size = x_size, y_size, arena_size
        self._keep = []
        self.nops = len(ops)
        self.ops = <fc_plan_op *>calloc(max(1, self.nops), sizeof(fc_plan_op))
        if self.ops == NULL:
            raise MemoryError("cannot allocate the plan's op array")
        for i, d in enumerate(ops):
            try:
                self._fill(&self.ops[i], d)
            except (ValueError, TypeError, KeyError) as e:
                raise ValueError(f"plan op {i} ({d.get('kind')}): {e}") from None

    def __dealloc__(self):
        free(self.ops)

    cdef int64_t _slot_size(self, int slot) except -1:
        if slot == 0:
            return self.x_size
        if slot == 1:
            return self.y_size
        if slot == 2:
            return self.arena_size
        raise ValueError(f"bad buffer slot {slot}")

    cdef fc_plan_ref _ref(self, object r, int64_t need, str what) except *:
        cdef fc_plan_ref out
        out.slot = int(r[0])
        out.off = int(r[1])
        if out.off < 0 or need < 0 or out.off + need > self._slot_size(out.slot):
            raise ValueError(f"{what} ({need} elements at {out.off}) lies outside its buffer")
        return out

    cdef const void *_param(self, object a, int64_t n, str what) except? NULL:
        if a is None:
            return NULL
        if a.dtype.itemsize != self.itemsize or a.dtype.kind != "f" or not a.dtype.isnative:
            raise TypeError(f"{what} has dtype {a.dtype}")
        if not a.flags.c_contiguous or a.size != n:
            raise ValueError(f"{what} must be C-contiguous with {n} elements, got {a.shape}")
        self._keep.append(a)
        return <const void *><size_t>a.ctypes.data

    cdef int _fill(self, fc_plan_op *op, dict d) except -1:
        cdef fc_conv_geom *g = &op.conv
        cdef fc_pool_geom *pg = &op.pool
        cdef int64_t ysize, nidx
        kind = d["kind"]
        op.kind = _PLAN_KINDS[kind]
        op.algo = _PLAN_ALGOS[d.get("algo", "direct")]
        op.N, op.C, op.L = d["N"], d["C"], d.get("L", 1)
        op.in_features = d.get("in_features", 0)
        op.ld = d.get("ld", 0)
        op.kalign = max(1, d.get("kalign", 16))
        op.chunk = max(1, d.get("chunk", 1))
        if op.N < 0 or op.C < 1 or op.L < 1 or op.in_features < 0:
            raise ValueError("bad sizes")
        if "conv" in d:
            op.conv = (<ConvGeom>ConvGeom(*d["conv"])).g
        if "pool" in d:
            op.pool = (<PoolGeom>PoolGeom(*d["pool"])).g
        ysize = op.N * op.C * op.L
        if op.kind == FC_PLAN_CONV:
            if (g.N, g.K, g.P * g.Q) != (op.N, op.C, op.L):
                raise ValueError("output (N, C, L) does not match the geometry")
            op.x = self._ref(d["x"], g.N * g.C * g.H * g.W, "x")
            op.y = self._ref(d["y"], ysize, "y")
            op.w = self._param(d["w"], g.K * (g.C // g.groups) * g.R * g.S, "w")
            op.b = self._param(d.get("b"), g.K, "b")
            if op.algo == FC_PLAN_GEMV:
                raise ValueError("gemv is for linear ops")
            op.fused_pool = _PLAN_KINDS[d["fused_pool"]] if d.get("fused_pool") else 0
            if op.fused_pool:
                if op.fused_pool not in (FC_PLAN_MAXPOOL, FC_PLAN_AVGPOOL) or \
                        (pg.N, pg.C, pg.H, pg.W) != (g.N, g.K, g.P, g.Q):
                    raise ValueError("the fused pool does not take the convolution's output")
                op.y2 = self._ref(d["y2"], pg.N * pg.C * pg.P * pg.Q, "y2")
                if op.fused_pool == FC_PLAN_MAXPOOL:
                    nidx = pg.N * pg.C * pg.P * pg.Q * 8 // self.itemsize
                    op.aux = self._ref(d["aux"], nidx, "aux")
        elif op.kind == FC_PLAN_LINEAR:
            op.x = self._ref(d["x"], op.N * op.in_features, "x")
            op.y = self._ref(d["y"], ysize, "y")
            op.w = self._param(d["w"], op.C * op.in_features, "w")
            op.b = self._param(d.get("b"), op.C, "b")
            if op.L != 1 or op.algo not in (FC_PLAN_GEMM, FC_PLAN_GEMV):
                raise ValueError("a linear op has L == 1 and algo gemm or gemv")
        elif op.kind in (FC_PLAN_MAXPOOL, FC_PLAN_AVGPOOL):
            if (pg.N, pg.C, pg.P * pg.Q) != (op.N, op.C, op.L):
                raise ValueError("output (N, C, L) does not match the geometry")
            op.x = self._ref(d["x"], pg.N * pg.C * pg.H * pg.W, "x")
            op.y = self._ref(d["y"], ysize, "y")
            if op.kind == FC_PLAN_MAXPOOL:
                op.aux = self._ref(d["aux"], ysize * 8 // self.itemsize, "aux")
        elif op.kind == FC_PLAN_GAP:
            op.x = self._ref(d["x"], op.N * op.C * op.in_features, "x")
            op.y = self._ref(d["y"], ysize, "y")
            if op.L != 1 or op.in_features < 1:
                raise ValueError("global pooling has L == 1 and in_features >= 1 pixels")
        elif op.kind == FC_PLAN_EPI:
            op.x = self._ref(d["x"], ysize, "x")
            op.y = self._ref(d["y"], ysize, "y")
            if op.x.slot == op.y.slot and op.x.off != op.y.off and \
                    abs(op.x.off - op.y.off) < ysize:
                raise ValueError("x and y overlap without being the same")
        elif op.kind == FC_PLAN_COPY:
            if op.ld < op.in_features:
                raise ValueError("copy pitch shorter than a row")
            op.x = self._ref(d["x"], op.N * op.in_features, "x")
            op.y = self._ref(d["y"], (op.N - 1) * op.ld + op.in_features if op.N else 0, "y")
        epis = d.get("epi", ())
        if len(epis) > FC_PLAN_MAX_EPI:
            raise ValueError(f"at most {FC_PLAN_MAX_EPI} epilogue steps")
        if epis and op.kind == FC_PLAN_COPY:
            raise ValueError("copy takes no epilogue")
        op.nepi = len(epis)
        for j, e in enumerate(epis):
            op.epi[j].kind = _PLAN_EPIS[e[0]]
            op.epi[j].p0 = self._param(e[1], op.C, "epilogue parameter") if e[1] is not None else NULL
            op.epi[j].p1 = self._param(e[2], op.C, "epilogue parameter") if e[2] is not None else NULL
            if op.epi[j].kind in (FC_EPI_AFFINE, FC_EPI_BIAS) and op.epi[j].p0 == NULL or \
                    op.epi[j].kind == FC_EPI_AFFINE and op.epi[j].p1 == NULL:
                raise ValueError("affine / bias steps need their parameters")
            if op.epi[j].kind == FC_EPI_ADD:
                op.epi[j].src = self._ref(e[3], ysize, "residual")
            op.epi[j].a = e[4]
            op.epi[j].b = e[5]
        return 0


def plan_run(PlanProgram prog, const real[::1] x, real[::1] y, real[::1] arena, int nthreads,
             double[::1] op_seconds=None):
    """Run a plan once: x the input, y the output, arena the intermediates (sizes as
    the program was built for; the GIL is released for the whole forward)."""
    if real is float:
        if prog.itemsize != 4:
            raise TypeError("plan_run: float32 buffers for a float64 plan")
    else:
        if prog.itemsize != 8:
            raise TypeError("plan_run: float64 buffers for a float32 plan")
    _need(x.shape[0], prog.x_size, "x")
    _need(y.shape[0], prog.y_size, "y")
    if arena.shape[0] < prog.arena_size:
        raise ValueError(f"arena has {arena.shape[0]} elements, the plan needs {prog.arena_size}")
    if op_seconds is not None:
        _need(op_seconds.shape[0], prog.nops, "op_seconds")
    cdef const real *xp = &x[0] if x.shape[0] else NULL
    cdef real *yp = &y[0] if y.shape[0] else NULL
    cdef real *ap = &arena[0] if arena.shape[0] else NULL
    cdef double *tp = &op_seconds[0] if op_seconds is not None else NULL
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_plan_run_f32(prog.ops, prog.nops, xp, yp, ap, nthreads, tp)
        else:
            st = fc_plan_run_f64(prog.ops, prog.nops, xp, yp, ap, nthreads, tp)
    _check(st, "compiled plan")


def gemv(const real[:, ::1] w, const real[:, ::1] x, const real[::1] b, real[:, ::1] y,
         int nthreads):
    """y (nv, M) = x (nv, K) . w^T (M, K) (+ b when b is not empty), fc_gemv."""
    cdef int64_t M = w.shape[0], Kd = w.shape[1], nv = x.shape[0]
    if x.shape[1] != Kd or y.shape[0] != nv or y.shape[1] != M:
        raise ValueError(f"gemv: shapes w {(M, Kd)}, x {(x.shape[0], x.shape[1])}, "
                         f"y {(y.shape[0], y.shape[1])} do not match")
    if b.shape[0] != 0:
        _need(b.shape[0], M, "b")
    if M == 0 or nv == 0:
        return
    cdef const real *wp = &w[0, 0] if Kd else NULL
    cdef const real *xp = &x[0, 0] if Kd else NULL
    cdef const real *bp = &b[0] if b.shape[0] else NULL
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_gemv_f32(M, Kd, wp, Kd, nv, xp, Kd, bp, &y[0, 0], M, nthreads)
        else:
            st = fc_gemv_f64(M, Kd, wp, Kd, nv, xp, Kd, bp, &y[0, 0], M, nthreads)
    _check(st, "gemv")


# ---- issue 14: Lp pooling (csrc/lppool.c) ------------------------------------

def lppool2d_fwd(PoolGeom geom, double p, const real[::1] x, real[::1] y, int nthreads):
    """y = Lp pooling of x (PyTorch's lp_pool2d; padding 0, dilation 1, 0 < p < inf)."""
    _need(x.shape[0], geom.x_size(), "x")
    _need(y.shape[0], geom.y_size(), "y")
    if geom.g.N == 0:
        return
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_lppool2d_fwd_f32(&geom.g, p, &x[0], &y[0], nthreads)
        else:
            st = fc_lppool2d_fwd_f64(&geom.g, p, &x[0], &y[0], nthreads)
    _check(st, "lp_pool2d")


def lppool2d_bwd(PoolGeom geom, double p, const real[::1] x, const real[::1] dy, real[::1] dx,
                 int nthreads):
    """dx (overwritten) = gradient of Lp pooling given x and dy."""
    _need(x.shape[0], geom.x_size(), "x")
    _need(dx.shape[0], geom.x_size(), "dx")
    _need(dy.shape[0], geom.y_size(), "dy")
    if geom.g.N == 0:
        return
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_lppool2d_bwd_f32(&geom.g, p, &x[0], &dy[0], &dx[0], nthreads)
        else:
            st = fc_lppool2d_bwd_f64(&geom.g, p, &x[0], &dy[0], &dx[0], nthreads)
    _check(st, "lp_pool2d_backward")


# ---- issue 14: deformable convolution (csrc/deform.c) ------------------------

cdef class DeformGeom:
    """Validated deformable-convolution geometry (wraps fc_deform_geom)."""
    cdef fc_deform_geom g

    def __cinit__(self, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R,
                  int64_t S, int64_t groups, int64_t offset_groups, int64_t stride_h,
                  int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w):
        _check(fc_deform_geom_init(&self.g, N, C, H, W, K, R, S, groups, offset_groups,
                                   stride_h, stride_w, pad_h, pad_w, dil_h, dil_w),
               "deformable convolution geometry")

    @property
    def P(self):
        return self.g.P

    @property
    def Q(self):
        return self.g.Q

    cdef int64_t x_size(self):
        return self.g.N * self.g.C * self.g.H * self.g.W

    cdef int64_t y_size(self):
        return self.g.N * self.g.K * self.g.P * self.g.Q

    cdef int64_t w_size(self):
        return self.g.K * (self.g.C // self.g.groups) * self.g.R * self.g.S

    cdef int64_t mask_size(self):
        return self.g.N * self.g.offset_groups * self.g.R * self.g.S * self.g.P * self.g.Q


def deform_conv2d_fwd(DeformGeom geom, const real[::1] x, const real[::1] offset,
                      const real[::1] mask, const real[::1] w, const real[::1] b, real[::1] y,
                      int nthreads):
    """mask and b may be empty buffers (no mask: DCNv1; no bias)."""
    _need(x.shape[0], geom.x_size(), "x")
    _need(offset.shape[0], 2 * geom.mask_size(), "offset")
    if mask.shape[0] != 0:
        _need(mask.shape[0], geom.mask_size(), "mask")
    _need(w.shape[0], geom.w_size(), "w")
    if b.shape[0] != 0:
        _need(b.shape[0], geom.g.K, "b")
    _need(y.shape[0], geom.y_size(), "y")
    if geom.g.N == 0:
        return
    cdef const real *mp = &mask[0] if mask.shape[0] else NULL
    cdef const real *bp = &b[0] if b.shape[0] else NULL
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_deform_conv2d_fwd_f32(&geom.g, &x[0], &offset[0], mp, &w[0], bp, &y[0],
                                          nthreads)
        else:
            st = fc_deform_conv2d_fwd_f64(&geom.g, &x[0], &offset[0], mp, &w[0], bp, &y[0],
                                          nthreads)
    _check(st, "deform_conv2d")


def deform_conv2d_bwd(DeformGeom geom, const real[::1] x, const real[::1] offset,
                      const real[::1] mask, const real[::1] w, const real[::1] dy,
                      real[::1] dx, real[::1] doffset, real[::1] dmask, real[::1] dw,
                      real[::1] db, int nthreads):
    """Every gradient overwritten; mask, dmask (together), dx and db may be empty."""
    _need(x.shape[0], geom.x_size(), "x")
    _need(offset.shape[0], 2 * geom.mask_size(), "offset")
    _need(doffset.shape[0], 2 * geom.mask_size(), "doffset")
    if mask.shape[0] != 0 or dmask.shape[0] != 0:
        _need(mask.shape[0], geom.mask_size(), "mask")
        _need(dmask.shape[0], geom.mask_size(), "dmask")
    _need(w.shape[0], geom.w_size(), "w")
    _need(dw.shape[0], geom.w_size(), "dw")
    _need(dy.shape[0], geom.y_size(), "dy")
    if dx.shape[0] != 0:
        _need(dx.shape[0], geom.x_size(), "dx")
    if db.shape[0] != 0:
        _need(db.shape[0], geom.g.K, "db")
    cdef bint has_n = geom.g.N > 0
    cdef const real *mp = &mask[0] if mask.shape[0] else NULL
    cdef real *dmp = &dmask[0] if dmask.shape[0] else NULL
    cdef real *dxp = &dx[0] if dx.shape[0] else NULL
    cdef real *dbp = &db[0] if db.shape[0] else NULL
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_deform_conv2d_bwd_f32(&geom.g, &x[0] if has_n else NULL,
                                          &offset[0] if has_n else NULL, mp, &w[0],
                                          &dy[0] if has_n else NULL, dxp,
                                          &doffset[0] if has_n else NULL, dmp, &dw[0], dbp,
                                          nthreads)
        else:
            st = fc_deform_conv2d_bwd_f64(&geom.g, &x[0] if has_n else NULL,
                                          &offset[0] if has_n else NULL, mp, &w[0],
                                          &dy[0] if has_n else NULL, dxp,
                                          &doffset[0] if has_n else NULL, dmp, &dw[0], dbp,
                                          nthreads)
    _check(st, "deform_conv2d_backward")



# ---- int8 kernels (csrc/qops.h) ----------------------------------------------
# Buffers are flat C-contiguous arrays; an output whose element type depends on
# the epilogue (uint8, int32 or float32) is passed as its bytes (arr.view(uint8)).

_QISA_NAMES = ("generic", "avx2", "avx512_vnni")
QOUT_KINDS = {"int32": FC_QOUT_I32, "uint8": FC_QOUT_U8, "float32": FC_QOUT_F32}
QGEMM_MAX_K = FC_QGEMM_MAX_K
QBIAS_MAX = FC_QBIAS_MAX
QGEMM_MR = FC_QGEMM_MR


def qisa():
    """The variant the int8 kernels use now: "avx512_vnni", "avx2" or "generic"."""
    return _QISA_NAMES[fc_qgemm_isa()]


def set_qisa(name):
    """Force the int8 variant ``name`` (capped by what this CPU supports), or None for
    the default (the best within fastconv's GEMM level); returns the variant now in use.
    Process-wide; for tests and benchmarks."""
    if name is None:
        fc_qgemm_set_isa(-1)
    elif name in _QISA_NAMES:
        fc_qgemm_set_isa(_QISA_NAMES.index(name))
    else:
        raise ValueError(f"qisa must be one of {_QISA_NAMES} or None, got {name!r}")
    return qisa()


def cpu_has_avx512_vnni():
    return bool(fc_cpu_has_avx512_vnni())


def qgemm_packed_bytes(int64_t M, int64_t K):
    """Bytes of M x K int8 weights packed by qgemm_pack_w."""
    return fc_qgemm_packed_bytes(M, K)


def qgemm_pack_w(const int8_t[:, ::1] w, uint8_t[::1] packed, int32_t[::1] rowsum):
    cdef int64_t M = w.shape[0], Kd = w.shape[1]
    _need(packed.shape[0], fc_qgemm_packed_bytes(M, Kd), "packed")
    _need(rowsum.shape[0], M, "rowsum")
    if M == 0:
        return
    cdef const int8_t *wp = &w[0, 0] if Kd else NULL
    cdef uint8_t *pp = &packed[0] if packed.shape[0] else NULL
    cdef fc_status st
    with nogil:
        st = fc_qgemm_pack_w(M, Kd, wp, Kd, pp, &rowsum[0])
    _check(st, "int8 weight packing")


cdef int _qepi(fc_qepi *e, int kind, bint relu, int a_zero, int out_zero,
               const int32_t[::1] bias, const float[::1] mult, int64_t M) except -1:
    if kind not in (FC_QOUT_I32, FC_QOUT_U8, FC_QOUT_F32):
        raise ValueError(f"bad output kind {kind}")
    e.out_kind = kind
    e.relu = relu
    e.a_zero = a_zero
    e.out_zero = out_zero
    e.bias = NULL
    e.mult = NULL
    if bias.shape[0]:
        _need(bias.shape[0], M, "bias")
        e.bias = &bias[0]
    if kind != FC_QOUT_I32:
        _need(mult.shape[0], M, "mult")
        if M:
            e.mult = &mult[0]
    return 0


cdef int64_t _qesize(int kind):
    return 1 if kind == FC_QOUT_U8 else 4


def qgemm(const uint8_t[::1] packed, const int32_t[::1] rowsum, const uint8_t[:, ::1] a,
          bint a_trans, int64_t M, int kind, bint relu, int a_zero, int out_zero,
          const int32_t[::1] bias, const float[::1] mult, uint8_t[::1] c, int nthreads):
    """C (M x N) = W . A (+ epilogue), W packed (M x K); A (K x N) uint8, or (N x K)
    with a_trans; C row-major M x N (its bytes)."""
    cdef int64_t Kd = a.shape[1] if a_trans else a.shape[0]
    cdef int64_t N = a.shape[0] if a_trans else a.shape[1]
    cdef fc_qepi e
    _qepi(&e, kind, relu, a_zero, out_zero, bias, mult, M)
    _need(packed.shape[0], fc_qgemm_packed_bytes(M, Kd), "packed")
    _need(rowsum.shape[0], M, "rowsum")
    _need(c.shape[0], M * N * _qesize(kind), "c (bytes)")
    if M == 0 or N == 0:
        return
    cdef const uint8_t *ap = &a[0, 0] if Kd else NULL
    cdef const uint8_t *pp = &packed[0] if packed.shape[0] else NULL
    cdef fc_status st
    with nogil:
        st = fc_qgemm_u8s8(M, N, Kd, pp, &rowsum[0], ap, a.shape[1], a_trans, &e, &c[0], N, 1,
                           nthreads)
    _check(st, "int8 gemm")


def qlinear(const uint8_t[:, ::1] x, const uint8_t[::1] packed, const int32_t[::1] rowsum,
            int64_t M, int kind, bint relu, int a_zero, int out_zero, const int32_t[::1] bias,
            const float[::1] mult, uint8_t[::1] y, int nthreads):
    """y (N, M) = x (N, K) . W^T (+ epilogue per output feature); y as bytes."""
    cdef int64_t N = x.shape[0], Kd = x.shape[1]
    cdef fc_qepi e
    _qepi(&e, kind, relu, a_zero, out_zero, bias, mult, M)
    _need(packed.shape[0], fc_qgemm_packed_bytes(M, Kd), "packed")
    _need(rowsum.shape[0], M, "rowsum")
    _need(y.shape[0], N * M * _qesize(kind), "y (bytes)")
    if M == 0 or N == 0:
        return
    cdef const uint8_t *xp = &x[0, 0] if Kd else NULL
    cdef const uint8_t *pp = &packed[0] if packed.shape[0] else NULL
    cdef fc_status st
    with nogil:
        st = fc_qlinear_u8(N, M, Kd, xp, pp, &rowsum[0], &e, &y[0], nthreads)
    _check(st, "int8 linear")


def qim2col(ConvGeom geom, const uint8_t[::1] x, int pad_value, uint8_t[::1] cols, int nthreads):
    _need(x.shape[0], geom.x_size(), "x")
    _need(cols.shape[0], geom.cols_size(), "cols")
    if geom.g.N == 0:
        return
    cdef fc_status st
    with nogil:
        st = fc_qim2col_u8(&geom.g, &x[0], <uint8_t>pad_value, &cols[0], nthreads)
    _check(st, "uint8 im2col")


def qconv2d(ConvGeom geom, const uint8_t[::1] x, const uint8_t[::1] packed,
            const int32_t[::1] rowsum, int kind, bint relu, int a_zero, int out_zero,
            const int32_t[::1] bias, const float[::1] mult, uint8_t[::1] y, int nthreads):
    """y = conv(x, W) (+ epilogue per output channel), x uint8 NCHW; packed: each group's
    weights in the C4 order (fc_qconv2d_c4), packed by qgemm_pack_w; y as bytes."""
    cdef fc_qepi e
    cdef int64_t G = geom.g.groups, Cg = geom.g.C // geom.g.groups
    cdef int64_t Cgq = (geom.g.C + 3) // 4 if G == 1 else Cg // 4
    cdef int64_t Kd = Cgq * geom.g.R * geom.g.S * 4
    _qepi(&e, kind, relu, a_zero, out_zero, bias, mult, geom.g.K)
    if G > 1 and Cg % 4:
        raise ValueError(f"int8 convolution with groups={G} needs C/groups a multiple of 4, got {Cg}")
    _need(x.shape[0], geom.x_size(), "x")
    _need(packed.shape[0], G * fc_qgemm_packed_bytes(geom.g.K // G, Kd), "packed")
    _need(rowsum.shape[0], geom.g.K, "rowsum")
    _need(y.shape[0], geom.y_size() * _qesize(kind), "y (bytes)")
    if geom.g.N == 0:
        return
    cdef fc_status st
    with nogil:
        st = fc_qconv2d_u8(&geom.g, &x[0], &packed[0], &rowsum[0], &e, &y[0], nthreads)
    _check(st, "int8 conv2d")


def qconv2d_c4(ConvGeom geom, const uint8_t[::1] x_c4, const uint8_t[::1] packed,
               const int32_t[::1] rowsum, int kind, bint relu, int a_zero, int out_zero,
               const int32_t[::1] bias, const float[::1] mult, bint y_c4, uint8_t[::1] y,
               int nthreads):
    """y = conv(x, W) (+ epilogue), x uint8 in the C4 layout (N, ceil(C/4), H, W, 4);
    y NCHW (its bytes), or uint8 C4 with y_c4."""
    cdef fc_qepi e
    cdef int64_t G = geom.g.groups, Cg = geom.g.C // geom.g.groups
    cdef int64_t Cgq = (geom.g.C + 3) // 4 if G == 1 else Cg // 4
    cdef int64_t Cq = Cgq if G == 1 else G * Cgq
    cdef int64_t Kd = Cgq * geom.g.R * geom.g.S * 4
    _qepi(&e, kind, relu, a_zero, out_zero, bias, mult, geom.g.K)
    if G > 1 and Cg % 4:
        raise ValueError(f"C4 convolution with groups={G} needs C/groups a multiple of 4, got {Cg}")
    _need(x_c4.shape[0], geom.g.N * Cq * geom.g.H * geom.g.W * 4, "x (C4)")
    _need(packed.shape[0], G * fc_qgemm_packed_bytes(geom.g.K // G, Kd), "packed")
    _need(rowsum.shape[0], geom.g.K, "rowsum")
    if y_c4:
        _need(y.shape[0], geom.g.N * ((geom.g.K + 3) // 4) * geom.g.P * geom.g.Q * 4, "y (C4)")
    else:
        _need(y.shape[0], geom.y_size() * _qesize(kind), "y (bytes)")
    if geom.g.N == 0:
        return
    cdef fc_status st
    with nogil:
        st = fc_qconv2d_c4(&geom.g, &x_c4[0], &packed[0], &rowsum[0], &e, y_c4, &y[0], nthreads)
    _check(st, "int8 conv2d (C4)")


def qreorder_to_c4(int64_t N, int64_t C, int64_t L, const uint8_t[::1] x, int pad, uint8_t[::1] y,
                   int nthreads):
    _need(x.shape[0], N * C * L, "x")
    _need(y.shape[0], N * ((C + 3) // 4) * L * 4, "y (C4)")
    if N * L == 0:
        return
    cdef fc_status st
    with nogil:
        st = fc_qreorder_to_c4(N, C, L, &x[0], <uint8_t>pad, &y[0], nthreads)
    _check(st, "NCHW -> C4")


def qreorder_from_c4(int64_t N, int64_t C, int64_t L, const uint8_t[::1] x, uint8_t[::1] y,
                     int nthreads):
    _need(x.shape[0], N * ((C + 3) // 4) * L * 4, "x (C4)")
    _need(y.shape[0], N * C * L, "y")
    if N * L == 0:
        return
    cdef fc_status st
    with nogil:
        st = fc_qreorder_from_c4(N, C, L, &x[0], &y[0], nthreads)
    _check(st, "C4 -> NCHW")


def qmaxpool2d_c4(PoolGeom geom, const uint8_t[::1] x, uint8_t[::1] y, int nthreads):
    """Max pooling of a C4 image; geom's C counts channel quads."""
    _need(x.shape[0], geom.x_size() * 4, "x (C4)")
    _need(y.shape[0], geom.y_size() * 4, "y (C4)")
    if geom.g.N == 0:
        return
    cdef fc_status st
    with nogil:
        st = fc_qmaxpool2d_c4(&geom.g, &x[0], &y[0], nthreads)
    _check(st, "uint8 max_pool2d (C4)")


def qmaxpool2d(PoolGeom geom, const uint8_t[::1] x, uint8_t[::1] y, int nthreads):
    _need(x.shape[0], geom.x_size(), "x")
    _need(y.shape[0], geom.y_size(), "y")
    if geom.g.N == 0:
        return
    cdef fc_status st
    with nogil:
        st = fc_qmaxpool2d_u8(&geom.g, &x[0], &y[0], nthreads)
    _check(st, "uint8 max_pool2d")


def qrelu(const uint8_t[::1] x, int zp, uint8_t[::1] y, int nthreads):
    _need(y.shape[0], x.shape[0], "y")
    if x.shape[0] == 0:
        return
    cdef fc_status st
    with nogil:
        st = fc_qrelu_u8(x.shape[0], &x[0], <uint8_t>zp, &y[0], nthreads)
    _check(st, "uint8 relu")


def quantize_u8(int64_t N, int64_t C, int64_t L, const float[::1] x, const float[::1] inv_scale,
                const int32_t[::1] zp, uint8_t[::1] q, int nthreads):
    _need(x.shape[0], N * C * L, "x")
    _need(q.shape[0], N * C * L, "q")
    _need(inv_scale.shape[0], C, "inv_scale")
    _need(zp.shape[0], C, "zp")
    if N * C * L == 0:
        return
    cdef fc_status st
    with nogil:
        st = fc_quantize_u8(N, C, L, &x[0], &inv_scale[0], &zp[0], &q[0], nthreads)
    _check(st, "quantize")


def quantize_u8_c4(int64_t N, int64_t C, int64_t L, const float[::1] x, float inv_scale, int zp,
                   uint8_t[::1] y, int nthreads):
    _need(x.shape[0], N * C * L, "x")
    _need(y.shape[0], N * ((C + 3) // 4) * L * 4, "y (C4)")
    if N * C * L == 0:
        return
    cdef fc_status st
    with nogil:
        st = fc_quantize_u8_c4(N, C, L, &x[0], inv_scale, zp, &y[0], nthreads)
    _check(st, "quantize (C4)")


def dequantize_u8(int64_t N, int64_t C, int64_t L, const uint8_t[::1] q, const float[::1] scale,
                  const int32_t[::1] zp, float[::1] y, int nthreads):
    _need(q.shape[0], N * C * L, "q")
    _need(y.shape[0], N * C * L, "y")
    _need(scale.shape[0], C, "scale")
    _need(zp.shape[0], C, "zp")
    if N * C * L == 0:
        return
    cdef fc_status st
    with nogil:
        st = fc_dequantize_u8(N, C, L, &q[0], &scale[0], &zp[0], &y[0], nthreads)
    _check(st, "dequantize")
