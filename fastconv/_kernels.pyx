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


# ---- the bindings, by concern (textual includes: one extension module) ------

include "_kernels_conv.pxi"
include "_kernels_plan.pxi"
include "_kernels_extra.pxi"
include "_kernels_quant.pxi"
include "_kernels_norm.pxi"
