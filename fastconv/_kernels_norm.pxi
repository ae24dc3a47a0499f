# Included by _kernels.pyx (one extension module, its bindings split by concern):
# batch normalisation over (N, C, L) data, L = H*W (csrc/batchnorm.c).
# An optional per-channel array (gamma, beta, m, b) is passed as a length-0
# array to mean "absent" (C's NULL: 1 for a scale, 0 for a shift).


cdef int _need_opt(Py_ssize_t got, int64_t want, str name) except -1:
    if got != 0 and got != want:
        raise ValueError(f"buffer {name} has {got} elements, expected 0 (absent) or {want}")
    return 0


def bn_fwd_train(int64_t N, int64_t C, int64_t L, double eps, const real[::1] x,
                 const real[::1] gamma, const real[::1] beta, real[::1] y, real[::1] mean,
                 real[::1] var, real[::1] invstd, int nthreads):
    """Training forward: y, and the batch mean, biased var and invstd per channel."""
    _need(x.shape[0], N * C * L, "x")
    _need(y.shape[0], N * C * L, "y")
    _need(mean.shape[0], C, "mean")
    _need(var.shape[0], C, "var")
    _need(invstd.shape[0], C, "invstd")
    _need_opt(gamma.shape[0], C, "gamma")
    _need_opt(beta.shape[0], C, "beta")
    if C == 0:
        return
    if N * L == 0:
        raise ValueError("batch norm: no values per channel")
    cdef const real *g = &gamma[0] if gamma.shape[0] else NULL
    cdef const real *b = &beta[0] if beta.shape[0] else NULL
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_bn_fwd_train_f32(N, C, L, eps, &x[0], g, b, &y[0], &mean[0], &var[0],
                                     &invstd[0], nthreads)
        else:
            st = fc_bn_fwd_train_f64(N, C, L, eps, &x[0], g, b, &y[0], &mean[0], &var[0],
                                     &invstd[0], nthreads)
    _check(st, "batch_norm")


def bn_affine(int64_t N, int64_t C, int64_t L, const real[::1] x, const real[::1] m,
              const real[::1] s, const real[::1] b, real[::1] y, int nthreads):
    """y = (x - m[c]) * s[c] + b[c] per channel (m, b of length 0: zero)."""
    _need(x.shape[0], N * C * L, "x")
    _need(y.shape[0], N * C * L, "y")
    _need(s.shape[0], C, "s")
    _need_opt(m.shape[0], C, "m")
    _need_opt(b.shape[0], C, "b")
    if N * C * L == 0:
        return
    cdef const real *mp = &m[0] if m.shape[0] else NULL
    cdef const real *bp = &b[0] if b.shape[0] else NULL
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_bn_affine_f32(N, C, L, &x[0], mp, &s[0], bp, &y[0], nthreads)
        else:
            st = fc_bn_affine_f64(N, C, L, &x[0], mp, &s[0], bp, &y[0], nthreads)
    _check(st, "batch_norm (affine)")


def bn_bwd(int64_t N, int64_t C, int64_t L, const real[::1] x, const real[::1] dy,
           const real[::1] mean, const real[::1] invstd, const real[::1] gamma,
           real[::1] sum_dy, real[::1] sum_dy_xhat, real[::1] dx, int nthreads):
    """Backward through the batch statistics: the two per-channel sums, and dx
    unless dx has length 0."""
    _need(x.shape[0], N * C * L, "x")
    _need(dy.shape[0], N * C * L, "dy")
    _need(mean.shape[0], C, "mean")
    _need(invstd.shape[0], C, "invstd")
    _need(sum_dy.shape[0], C, "sum_dy")
    _need(sum_dy_xhat.shape[0], C, "sum_dy_xhat")
    _need_opt(gamma.shape[0], C, "gamma")
    _need_opt(dx.shape[0], N * C * L, "dx")
    if C == 0:
        return
    if N * L == 0:
        raise ValueError("batch norm backward: no values per channel")
    cdef const real *g = &gamma[0] if gamma.shape[0] else NULL
    cdef real *d = &dx[0] if dx.shape[0] else NULL
    cdef fc_status st
    with nogil:
        if real is float:
            st = fc_bn_bwd_f32(N, C, L, &x[0], &dy[0], &mean[0], &invstd[0], g, &sum_dy[0],
                               &sum_dy_xhat[0], d, nthreads)
        else:
            st = fc_bn_bwd_f64(N, C, L, &x[0], &dy[0], &mean[0], &invstd[0], g, &sum_dy[0],
                               &sum_dy_xhat[0], d, nthreads)
    _check(st, "batch_norm_backward")
