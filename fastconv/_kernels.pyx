# cython: language_level=3
"""Thin Cython bindings over the C kernels in csrc/.

One wrapper per C entry point (convolution: one per pass, the algorithm as an
int, ALGO_ID). Each takes a geometry object and flat C-contiguous buffers
(``arr.reshape(-1)`` of a C-contiguous array), checks that every buffer has
exactly the length the geometry implies (so the C code can never index
outside what Python handed it), calls C with the GIL released, and turns the
returned fc_status into a Python exception. The few wrappers a layer calls on
every inference step (conv2d_fwd, gemv, maxpool2d_fwd_values, relu_inplace,
clip_inplace) take C-contiguous arrays of any shape through the buffer protocol
instead of typed memoryviews (see _acquire), with the same length checks. Argument checking that users see
lives in fastconv/_args.py and fastconv/functional.py; the C entry points
check the geometry (and the algorithm) once more, defensively.
"""

from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)
from libc.stdint cimport int64_t
from libc.string cimport memset

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


# ---- raw buffers ---------------------------------------------------------------
# The wrappers the layers call on every inference step (conv2d_fwd, gemv, the values
# of max pooling, relu / clip in place) take any C-contiguous float32 / float64 array
# through the buffer protocol: no reshape to 1-d by the caller, and none of a typed
# memoryview's per-call work (an object per buffer, its format parsed, the fused-type
# dispatch), about 0.5 us a call of four buffers. _acquire takes a buffer, _kind
# names its element type, _release_all gives them back (also the ones not taken:
# PyBuffer_Release skips a view whose obj is NULL).

cdef int _acquire(object a, Py_buffer *v, bint writable, str name) except -1:
    """v = a C-contiguous (writeable) buffer of a; ValueError naming `name` if a has none."""
    cdef int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT
    if writable:
        flags |= PyBUF_WRITABLE
    try:
        PyObject_GetBuffer(a, v, flags)
    except (BufferError, TypeError, ValueError) as e:
        what = "writeable C-contiguous" if writable else "C-contiguous"
        raise ValueError(f"buffer {name}: a {what} float32 or float64 array is needed ({e})") from None
    return 0


cdef int _kind(const Py_buffer *v, int want, str name) except -1:
    """4 for a native float32 buffer, 8 for float64 (ValueError otherwise, or when `want`
    is not 0 and differs: all the buffers of one call share a type)."""
    cdef const char *f = v.format
    cdef int k = 0
    if f != NULL and f[0] != 0 and f[1] == 0:
        if f[0] == b'f' and v.itemsize == 4:
            k = 4
        elif f[0] == b'd' and v.itemsize == 8:
            k = 8
    if k == 0:
        fmt = (<bytes>f).decode("ascii", "replace") if f != NULL else "B"
        raise ValueError(f"buffer {name}: float32 or float64 in native byte order is needed, "
                         f"got format {fmt!r}")
    if want != 0 and k != want:
        raise ValueError(f"buffer {name}: float{8 * k} where the call's other buffers are "
                         f"float{8 * want}")
    return k


cdef inline void _blank(Py_buffer *v) noexcept:
    """An empty view (obj NULL): what PyBuffer_Release leaves alone."""
    memset(v, 0, sizeof(Py_buffer))


cdef inline Py_ssize_t _count(const Py_buffer *v) noexcept:
    return v.len // v.itemsize


cdef void _release_all(Py_buffer *a, Py_buffer *b, Py_buffer *c, Py_buffer *d) noexcept:
    PyBuffer_Release(a)
    PyBuffer_Release(b)
    PyBuffer_Release(c)
    PyBuffer_Release(d)


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
