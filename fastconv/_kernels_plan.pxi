# Included by _kernels.pyx (one extension module, its bindings split by concern):
# the compiled inference plan and the GEMV (csrc/plan.h).

# ---- compiled inference plan (csrc/plan.h) ---------------------------------

from libc.stdlib cimport calloc, free
from libc.string cimport memset

_PLAN_KINDS = {"conv": FC_PLAN_CONV, "linear": FC_PLAN_LINEAR, "maxpool": FC_PLAN_MAXPOOL,
               "avgpool": FC_PLAN_AVGPOOL, "gap": FC_PLAN_GAP, "epi": FC_PLAN_EPI,
               "copy": FC_PLAN_COPY}
_PLAN_ALGOS = {"direct": FC_PLAN_DIRECT, "gemm": FC_PLAN_GEMM, "winograd": FC_PLAN_WINOGRAD,
               "gemv": FC_PLAN_GEMV, "gemmt": FC_PLAN_GEMMT, "depthwise": FC_PLAN_DW,
               "pointwise": FC_PLAN_PW, "stem": FC_PLAN_STEM}
_PLAN_EPIS = {"affine": FC_EPI_AFFINE, "bias": FC_EPI_BIAS, "add": FC_EPI_ADD,
              "relu": FC_EPI_RELU, "leaky_relu": FC_EPI_LEAKY, "clip": FC_EPI_CLIP,
              "sigmoid": FC_EPI_SIGMOID, "tanh": FC_EPI_TANH}


cdef class GemmtWeights:
    """A conv's weights (K, C, R, S) (groups 1, float32 or float64, C-contiguous)
    packed once as the transposed product's B (fc_conv_gemmt_pack_w), for the GEMM
    kernel of fastconv's ISA level at packing time (``nr``: its panel width)."""
    cdef readonly object buf
    cdef const fc_gemm_kernel *kern
    cdef readonly int64_t K, CRS
    cdef readonly int itemsize, nr

    def __cinit__(self, w):
        if getattr(w, "ndim", 0) != 4 or w.dtype.kind != "f" or \
                w.dtype.itemsize not in (4, 8) or not w.dtype.isnative or \
                not w.flags.c_contiguous:
            raise ValueError("GemmtWeights: w must be a C-contiguous native float32 or "
                             "float64 array (K, C, R, S)")
        self.itemsize = w.dtype.itemsize
        self.K = w.shape[0]
        self.CRS = w.shape[1] * w.shape[2] * w.shape[3]
        if self.K < 1 or self.CRS < 1:
            raise ValueError(f"GemmtWeights: empty weights {w.shape}")
        self.kern = fc_gemm_kernel_f32() if self.itemsize == 4 else fc_gemm_kernel_f64()
        self.nr = fc_gemm_kernel_nr(self.kern)
        cdef size_t nbytes = fc_conv_gemmt_packed_bytes(self.kern, self.K, self.CRS)
        if nbytes == 0:
            raise OverflowError(f"GemmtWeights: weights {w.shape} too large")
        self.buf = bytearray(nbytes)
        cdef unsigned char[::1] mv = self.buf
        cdef const void *wp = <const void *><size_t>w.ctypes.data
        cdef void *bp = <void *>&mv[0]
        cdef fc_status st
        with nogil:
            st = fc_conv_gemmt_pack_w(self.kern, self.K, self.CRS, wp, bp)
        _check(st, "gemmt weight packing")


    @staticmethod
    def kernel_now(int itemsize):
        """Which GEMM kernel packing would use now for float32 (4) / float64 (8) (an id)."""
        return <size_t>(fc_gemm_kernel_f32() if itemsize == 4 else fc_gemm_kernel_f64())

    @staticmethod
    def kernel_nr(int itemsize):
        """The panel width (NR) of kernel_now's kernel."""
        return fc_gemm_kernel_nr(fc_gemm_kernel_f32() if itemsize == 4 else fc_gemm_kernel_f64())

    @property
    def kernel(self):
        """The id (kernel_now's) of the GEMM kernel these panels are packed for."""
        return <size_t>self.kern


cdef class GemmWeights:
    """A GEMM conv's weights (K, C, R, S) (groups 1, float32 or float64, C-contiguous)
    packed once for the forward pass of each output-channel share the plan's executor
    cuts an image of the convolution ``conv`` (a ConvGeom tuple) into: blocks of
    ``kalign`` channels, ``kp`` shares (fc_plan_conv_units with ``chunk`` and ``nth``
    threads), each packed by fc_conv_gemm_prepack (csrc/conv_gemm_pre.h) for the GEMM
    kernel of fastconv's ISA level now. The executor uses them when it cuts the op the
    same way at run time; otherwise, or at another ISA level, it packs as before (the
    same bits either way)."""
    cdef readonly tuple conv, offsets
    cdef readonly int64_t kalign, chunk, kp, nbytes
    cdef readonly int itemsize, nth
    cdef void *raw
    cdef size_t base
    cdef int64_t *offs

    def __cinit__(self, w, tuple conv, int64_t kalign, int64_t chunk, int nth):
        if getattr(w, "ndim", 0) != 4 or w.dtype.kind != "f" or \
                w.dtype.itemsize not in (4, 8) or not w.dtype.isnative or \
                not w.flags.c_contiguous:
            raise ValueError("GemmWeights: w must be a C-contiguous native float32 or "
                             "float64 array (K, C, R, S)")
        if kalign < 1 or chunk < 1 or nth < 1:
            raise ValueError(f"GemmWeights: kalign ({kalign}), chunk ({chunk}) and nth "
                             f"({nth}) must be at least 1")
        cdef fc_conv_geom g = (<ConvGeom>ConvGeom(*conv)).g
        if g.groups != 1 or tuple(w.shape) != (g.K, g.C, g.R, g.S):
            raise ValueError(f"GemmWeights: weights {w.shape} do not match the convolution "
                             f"(K {g.K}, C {g.C}, R {g.R}, S {g.S}, groups {g.groups}; "
                             "groups must be 1)")
        self.conv, self.kalign, self.chunk, self.nth = conv, kalign, chunk, nth
        self.itemsize = w.dtype.itemsize
        cdef int64_t nblk = (g.K + kalign - 1) // kalign, kp, step, s, b0, b1, k0, k1
        fc_plan_conv_units(g.N, nblk, chunk, nth, &kp, &step)
        self.kp = kp
        shares, sizes, offs, total = [], [], [], 0
        cdef fc_conv_geom sub
        cdef size_t nb
        for s in range(kp):
            # fc_split(nblk, kp, s): the executor's blocks of share s
            b0 = s * (nblk // kp) + min(s, nblk % kp)
            b1 = b0 + nblk // kp + (1 if s < nblk % kp else 0)
            k0, k1 = b0 * kalign, min(b1 * kalign, g.K)
            sub = g
            sub.K = k1 - k0
            nb = fc_conv_gemm_prepacked_bytes(&sub, self.itemsize) if k1 > k0 else 0
            if k1 > k0 and nb == 0:
                raise OverflowError(f"GemmWeights: weights {w.shape} too large to pack")
            shares.append((k0, k1))
            sizes.append(nb)
            offs.append(total)
            total += (nb + 63) // 64 * 64
        self.offsets, self.nbytes = tuple(offs), total
        self.offs = <int64_t *>calloc(kp, sizeof(int64_t))
        self.raw = calloc(total + 64, 1)                     # 64 spare bytes to align
        if self.offs == NULL or self.raw == NULL:
            raise MemoryError(f"GemmWeights: cannot allocate {total} bytes")
        for s in range(kp):
            self.offs[s] = offs[s]
        self.base = (<size_t>self.raw + 63) // 64 * 64
        cdef const char *wp = <const char *><size_t>w.ctypes.data
        cdef int64_t crs = g.C * g.R * g.S
        cdef fc_status st
        for s in range(kp):
            k0, k1 = shares[s]
            if k1 <= k0:
                continue
            sub = g
            sub.K = k1 - k0
            nb = sizes[s]
            with nogil:
                if self.itemsize == 4:
                    st = fc_conv_gemm_prepack_f32(&sub, <const float *>wp + k0 * crs,
                                                  <void *>(self.base + self.offs[s]), nb)
                else:
                    st = fc_conv_gemm_prepack_f64(&sub, <const double *>wp + k0 * crs,
                                                  <void *>(self.base + self.offs[s]), nb)
            _check(st, "gemm weight packing")

    def __dealloc__(self):
        free(self.raw)
        free(self.offs)

    cdef const void *ptr(self):
        return <const void *>self.base

    cdef const int64_t *offs_ptr(self):
        return self.offs


cdef class PwWeights:
    """A 1x1 conv's weights (K, C, 1, 1) (float32 or float64, C-contiguous) packed
    once for the pointwise kernel (fc_pw_pack_w: panels of ``mr`` output channels,
    [ceil(K / mr)][C][mr], one layout for every SIMD level)."""
    cdef readonly object buf
    cdef readonly int64_t K, C
    cdef readonly int itemsize, mr

    def __cinit__(self, w):
        if getattr(w, "ndim", 0) != 4 or w.dtype.kind != "f" or \
                w.dtype.itemsize not in (4, 8) or not w.dtype.isnative or \
                not w.flags.c_contiguous or w.shape[2:] != (1, 1):
            raise ValueError("PwWeights: w must be a C-contiguous native float32 or "
                             f"float64 array (K, C, 1, 1), got {getattr(w, 'shape', None)}")
        self.itemsize = w.dtype.itemsize
        self.K, self.C = w.shape[0], w.shape[1]
        self.mr = FC_PW_MR
        cdef int64_t n = fc_pw_packed_elems(self.K, self.C)
        if n == 0:
            raise ValueError(f"PwWeights: empty or too large weights {w.shape}")
        self.buf = bytearray(n * self.itemsize)
        cdef unsigned char[::1] mv = self.buf
        cdef const void *wp = <const void *><size_t>w.ctypes.data
        cdef void *bp = <void *>&mv[0]
        cdef int64_t Kd = self.K, Cd = self.C
        with nogil:
            if self.itemsize == 4:
                fc_pw_pack_w_f32(Kd, Cd, <const float *>wp, <float *>bp)
            else:
                fc_pw_pack_w_f64(Kd, Cd, <const double *>wp, <double *>bp)


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

    cdef int _gemmt(self, fc_plan_op *op, object pk) except -1:
        cdef GemmtWeights p
        if not isinstance(pk, GemmtWeights):
            raise ValueError("a gemmt conv needs its weights packed (wpack, GemmtWeights)")
        p = <GemmtWeights>pk
        if op.conv.groups != 1 or p.itemsize != self.itemsize or p.K != op.conv.K or \
                p.CRS != op.conv.C * op.conv.R * op.conv.S:
            raise ValueError(f"packed weights (K {p.K}, CRS {p.CRS}, itemsize {p.itemsize}) "
                             "do not match the convolution (groups 1)")
        self._keep.append(p)
        cdef unsigned char[::1] mv = p.buf
        op.wpack = <const void *>&mv[0]
        op.wkern = <const void *>p.kern
        return 0

    cdef int _pw(self, fc_plan_op *op, object pk) except -1:
        cdef PwWeights p
        cdef fc_conv_geom *g = &op.conv
        if not isinstance(pk, PwWeights):
            raise ValueError("a pointwise conv needs its weights packed (wpack, PwWeights)")
        p = <PwWeights>pk
        if not (g.R == 1 and g.S == 1 and g.stride_h == 1 and g.stride_w == 1 and
                g.pad_h == 0 and g.pad_w == 0 and g.P == g.H and g.Q == g.W and
                g.dil_h == 1 and g.dil_w == 1 and g.groups == 1):
            raise ValueError("pointwise needs a 1x1 kernel, stride 1, no padding, "
                             "dilation 1 and groups 1")
        if op.solo or op.fused_pool:
            raise ValueError("a pointwise conv does not run solo or with a fused pool")
        if p.itemsize != self.itemsize or p.K != g.K or p.C != g.C:
            raise ValueError(f"packed weights (K {p.K}, C {p.C}, itemsize {p.itemsize}) "
                             "do not match the convolution")
        self._keep.append(p)
        cdef unsigned char[::1] mv = p.buf
        op.wpack = <const void *>&mv[0]
        op.wkern = NULL
        return 0

    cdef int _gemm_pre(self, fc_plan_op *op, dict d) except -1:
        cdef GemmWeights p
        pk = d.get("wpre")
        if pk is None:
            return 0
        if not isinstance(pk, GemmWeights):
            raise ValueError("wpre must be GemmWeights")
        p = <GemmWeights>pk
        if op.algo != FC_PLAN_GEMM or op.solo or op.conv.groups != 1:
            raise ValueError("weights packed once (wpre) are for a shared gemm conv, groups 1")
        if p.itemsize != self.itemsize or p.conv != tuple(d["conv"]) or \
                p.kalign != op.kalign or p.chunk != op.chunk:
            raise ValueError("packed weights (wpre) were packed for another convolution, "
                             "cut or dtype")
        self._keep.append(p)
        op.wpre = p.ptr()
        op.wpre_off = p.offs_ptr()
        op.wpre_kp = p.kp
        return 0

    cdef int _fill(self, fc_plan_op *op, dict d) except -1:
        cdef fc_conv_geom *g = &op.conv
        cdef fc_pool_geom *pg = &op.pool
        cdef int64_t ysize
        kind = d["kind"]
        op.kind = _PLAN_KINDS[kind]
        op.algo = _PLAN_ALGOS[d.get("algo", "direct")]
        op.N, op.C, op.L = d["N"], d["C"], d.get("L", 1)
        op.in_features = d.get("in_features", 0)
        op.ld = d.get("ld", 0)
        op.kalign = max(1, d.get("kalign", 16))
        op.chunk = max(1, d.get("chunk", 1))
        op.pxsplit = 1 if d.get("pxsplit") else 0
        op.solo = 1 if d.get("solo") else 0
        if op.solo and kind != "conv":
            raise ValueError("only a conv op runs solo")
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
            if op.algo == FC_PLAN_GEMMT:
                if op.solo:
                    raise ValueError("a gemmt conv does not run solo")
                self._gemmt(op, d.get("wpack"))
            if op.algo == FC_PLAN_DW and not (
                    g.groups == g.C == g.K and g.dil_h == 1 and g.dil_w == 1
                    and g.stride_h in (1, 2) and g.stride_w in (1, 2) and g.R * g.S <= 64):
                raise ValueError("depthwise needs groups == C == K, dilation 1, strides 1 or 2 "
                                 "and at most 64 taps")
            if op.algo == FC_PLAN_STEM and not (
                    g.groups == 1 and 1 <= g.C <= 4 and g.dil_h == 1 and g.dil_w == 1
                    and g.stride_h in (1, 2) and g.stride_w in (1, 2)
                    and g.C * g.R * g.S <= 512):
                raise ValueError("stem needs groups 1, at most 4 input channels, dilation 1, "
                                 "strides 1 or 2 and at most 512 taps C*R*S")
            if op.algo == FC_PLAN_STEM and op.solo:
                raise ValueError("a stem conv does not run solo")
            op.fused_pool = _PLAN_KINDS[d["fused_pool"]] if d.get("fused_pool") else 0
            if op.fused_pool:
                if op.fused_pool not in (FC_PLAN_MAXPOOL, FC_PLAN_AVGPOOL) or \
                        (pg.N, pg.C, pg.H, pg.W) != (g.N, g.K, g.P, g.Q):
                    raise ValueError("the fused pool does not take the convolution's output")
                op.y2 = self._ref(d["y2"], pg.N * pg.C * pg.P * pg.Q, "y2")
            if op.algo == FC_PLAN_PW:
                self._pw(op, d.get("wpack"))
            self._gemm_pre(op, d)
            if op.pxsplit and (op.algo != FC_PLAN_GEMMT or op.fused_pool):
                raise ValueError("pxsplit (images cut by output pixels) is for a gemmt conv "
                                 "without a fused pool")
        elif op.pxsplit:
            raise ValueError("pxsplit is for conv ops")
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


def gemv(w, x, b, y, int nthreads):
    """y (nv, M) = x (nv, K) . w^T (M, K) (+ b when b is not empty), fc_gemv. w, x, y
    2-d and b 1-d C-contiguous arrays of one float type (raw buffers, see _acquire)."""
    cdef Py_buffer vw, vx, vb, vy
    _blank(&vw); _blank(&vx); _blank(&vb); _blank(&vy)
    cdef int k
    cdef int64_t M, Kd, nv
    cdef fc_status st = FC_OK
    try:
        _acquire(w, &vw, False, "w")
        _acquire(x, &vx, False, "x")
        _acquire(b, &vb, False, "b")
        _acquire(y, &vy, True, "y")
        k = _kind(&vw, 0, "w")
        _kind(&vx, k, "x")
        _kind(&vb, k, "b")
        _kind(&vy, k, "y")
        if vw.ndim != 2 or vx.ndim != 2 or vy.ndim != 2 or vb.ndim != 1:
            raise ValueError(f"gemv: w, x and y must be 2-d and b 1-d, got {vw.ndim}, "
                             f"{vx.ndim}, {vy.ndim} and {vb.ndim} dimensions")
        M, Kd, nv = vw.shape[0], vw.shape[1], vx.shape[0]
        if vx.shape[1] != Kd or vy.shape[0] != nv or vy.shape[1] != M:
            raise ValueError(f"gemv: shapes w {(M, Kd)}, x {(vx.shape[0], vx.shape[1])}, "
                             f"y {(vy.shape[0], vy.shape[1])} do not match")
        if vb.shape[0] != 0:
            _need(vb.shape[0], M, "b")
        if M != 0 and nv != 0:
            with nogil:
                if k == 4:
                    st = fc_gemv_f32(M, Kd, <const float *>(vw.buf if Kd else NULL), Kd, nv,
                                     <const float *>(vx.buf if Kd else NULL), Kd,
                                     <const float *>(vb.buf if vb.shape[0] else NULL),
                                     <float *>vy.buf, M, nthreads)
                else:
                    st = fc_gemv_f64(M, Kd, <const double *>(vw.buf if Kd else NULL), Kd, nv,
                                     <const double *>(vx.buf if Kd else NULL), Kd,
                                     <const double *>(vb.buf if vb.shape[0] else NULL),
                                     <double *>vy.buf, M, nthreads)
    finally:
        _release_all(&vw, &vx, &vb, &vy)
    _check(st, "gemv")
