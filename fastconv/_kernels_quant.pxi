# Included by _kernels.pyx (one extension module, its bindings split by concern):
# the int8 kernels (csrc/qops.h).

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
