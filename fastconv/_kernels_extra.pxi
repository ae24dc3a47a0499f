# Included by _kernels.pyx (one extension module, its bindings split by concern):
# Lp pooling, deformable convolution and the optimisers' updates (csrc/lppool.c,
# csrc/deform.c, csrc/optim.c).

# ---- Lp pooling (csrc/lppool.c) ------------------------------------

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


# ---- deformable convolution (csrc/deform.c) ------------------------

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


# ---- optimiser updates (csrc/optim.c) ---------------------------------

def sgd_step(p, g, buf, double lr, double momentum, double weight_decay, bint first,
             int nthreads):
    """One SGD step in place over p (and buf, the momentum buffer; None: no momentum),
    fc_sgd_step: d = g + weight_decay * p, buf = d (first) or momentum * buf + d, then
    p -= lr * buf (or d). p, g, buf: C-contiguous arrays of one float type and size (raw
    buffers, see _acquire); lr, momentum and weight_decay are rounded to that type."""
    cdef Py_buffer vp, vg, vb, none
    _blank(&vp); _blank(&vg); _blank(&vb); _blank(&none)
    cdef int k
    cdef Py_ssize_t n
    cdef fc_status st = FC_OK
    try:
        _acquire(p, &vp, True, "p")
        _acquire(g, &vg, False, "g")
        k = _kind(&vp, 0, "p")
        _kind(&vg, k, "g")
        n = _count(&vp)
        _need(_count(&vg), n, "g")
        if buf is not None:
            _acquire(buf, &vb, True, "buf")
            _kind(&vb, k, "buf")
            _need(_count(&vb), n, "buf")
        with nogil:
            if k == 4:
                st = fc_sgd_step_f32(n, <float *>vp.buf, <const float *>vg.buf,
                                     <float *>vb.buf, <float>lr, <float>momentum,
                                     <float>weight_decay, first, nthreads)
            else:
                st = fc_sgd_step_f64(n, <double *>vp.buf, <const double *>vg.buf,
                                     <double *>vb.buf, lr, momentum, weight_decay, first,
                                     nthreads)
    finally:
        _release_all(&vp, &vg, &vb, &none)
    _check(st, "sgd step")
