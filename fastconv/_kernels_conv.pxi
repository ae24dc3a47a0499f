# Included by _kernels.pyx (one extension module, its bindings split by concern):
# im2col / col2im, convolution, Winograd tile size, GEMM, pooling, elementwise and
# the build's compiler (csrc/conv*.c, gemm.c, pool.c, eltwise.c).

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


def conv2d_fwd(int algo, ConvGeom geom, x, w, b, y, int nthreads):
    """y = conv(x, w) + b by algorithm ``algo`` (ALGO_DIRECT, ALGO_GEMM, ALGO_WINOGRAD).
    x, w, b, y: C-contiguous arrays of one float type, of any shape (raw buffers, see
    _acquire); b may be empty, meaning no bias; x and y are empty when the batch is.
    The C entry point checks the geometry and the algorithm (ValueError for an unknown
    algo, and for Winograd off 3x3 / stride 1 / dilation 1: functional.py checks
    that with a clear message first)."""
    cdef Py_buffer vx, vw, vb, vy
    _blank(&vx); _blank(&vw); _blank(&vb); _blank(&vy)
    cdef int k
    cdef fc_status st
    try:
        _acquire(x, &vx, False, "x")
        _acquire(w, &vw, False, "w")
        _acquire(b, &vb, False, "b")
        _acquire(y, &vy, True, "y")
        k = _kind(&vx, 0, "x")
        _kind(&vw, k, "w")
        _kind(&vb, k, "b")
        _kind(&vy, k, "y")
        _need(_count(&vx), geom.x_size(), "x")
        _need(_count(&vw), geom.w_size(), "w")
        _need(_count(&vy), geom.y_size(), "y")
        if vb.len != 0:
            _need(_count(&vb), geom.g.K, "b")
        with nogil:
            if k == 4:
                st = fc_conv2d_fwd_f32(&geom.g, algo, <const float *>(vx.buf if vx.len else NULL),
                                       <const float *>vw.buf,
                                       <const float *>(vb.buf if vb.len else NULL),
                                       <float *>(vy.buf if vy.len else NULL), nthreads)
            else:
                st = fc_conv2d_fwd_f64(&geom.g, algo, <const double *>(vx.buf if vx.len else NULL),
                                       <const double *>vw.buf,
                                       <const double *>(vb.buf if vb.len else NULL),
                                       <double *>(vy.buf if vy.len else NULL), nthreads)
    finally:
        _release_all(&vx, &vw, &vb, &vy)
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


def maxpool2d_fwd_values(PoolGeom geom, x, y, int nthreads):
    """maxpool2d_fwd's y without the indices (the same values); x and y C-contiguous
    arrays of one float type, any shape (raw buffers, see _acquire)."""
    cdef Py_buffer vx, vy, none
    _blank(&vx); _blank(&vy); _blank(&none)
    cdef int k
    cdef fc_status st = FC_OK
    try:
        _acquire(x, &vx, False, "x")
        _acquire(y, &vy, True, "y")
        k = _kind(&vx, 0, "x")
        _kind(&vy, k, "y")
        _need(_count(&vx), geom.x_size(), "x")
        _need(_count(&vy), geom.y_size(), "y")
        if geom.g.N != 0:
            with nogil:
                if k == 4:
                    st = fc_maxpool2d_fwd_values_f32(&geom.g, <const float *>vx.buf,
                                                     <float *>vy.buf, nthreads)
                else:
                    st = fc_maxpool2d_fwd_values_f64(&geom.g, <const double *>vx.buf,
                                                     <double *>vy.buf, nthreads)
    finally:
        _release_all(&vx, &vy, &none, &none)
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


def relu_inplace(x, int nthreads):
    """x = relu(x) in place (relu_fwd's bits: -0.0 -> +0.0, NaN kept); x a writeable
    C-contiguous float32 / float64 array of any shape (a raw buffer, see _acquire)."""
    cdef Py_buffer vx, none
    _blank(&vx); _blank(&none)
    cdef int k
    cdef Py_ssize_t n
    cdef fc_status st = FC_OK
    try:
        _acquire(x, &vx, True, "x")
        k = _kind(&vx, 0, "x")
        n = _count(&vx)
        if n != 0:
            with nogil:
                if k == 4:
                    st = fc_relu_inplace_f32(n, <float *>vx.buf, nthreads)
                else:
                    st = fc_relu_inplace_f64(n, <double *>vx.buf, nthreads)
    finally:
        _release_all(&vx, &none, &none, &none)
    _check(st, "relu (in place)")


def clip_inplace(x, double lo, double hi, int nthreads):
    """x = clip(x, lo, hi) in place, as numpy.clip with both bounds (NaN kept, -0.0 kept
    when lo is 0); lo and hi are rounded to x's type and must satisfy lo <= hi. x a
    writeable C-contiguous float32 / float64 array of any shape (see _acquire)."""
    cdef Py_buffer vx, none
    _blank(&vx); _blank(&none)
    cdef int k
    cdef Py_ssize_t n
    cdef fc_status st = FC_OK
    try:
        _acquire(x, &vx, True, "x")
        k = _kind(&vx, 0, "x")
        n = _count(&vx)
        if n != 0:
            with nogil:
                if k == 4:
                    st = fc_clip_inplace_f32(n, <float *>vx.buf, <float>lo, <float>hi, nthreads)
                else:
                    st = fc_clip_inplace_f64(n, <double *>vx.buf, lo, hi, nthreads)
    finally:
        _release_all(&vx, &none, &none, &none)
    _check(st, "clip (in place)")


def all_finite(const real[::1] x, int nthreads):
    """True when no element of x is inf or NaN (one read, SIMD, threads above 64 Ki)."""
    cdef int finite = 1
    cdef fc_status st
    if x.shape[0] == 0:
        return True
    with nogil:
        if real is float:
            st = fc_all_finite_f32(x.shape[0], &x[0], &finite, nthreads)
        else:
            st = fc_all_finite_f64(x.shape[0], &x[0], &finite, nthreads)
    _check(st, "all_finite")
    return finite != 0


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
