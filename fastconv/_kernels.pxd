# Declarations of the C API in csrc/fastconv.h (the one public C header).
from libc.stdint cimport int64_t

cdef extern from "fastconv.h" nogil:
    ctypedef enum fc_status:
        FC_OK
        FC_EINVAL
        FC_ENOMEM
        FC_EOVERFLOW

    ctypedef struct fc_conv_geom:
        int64_t N, C, H, W
        int64_t K, R, S
        int64_t groups
        int64_t stride_h, stride_w
        int64_t pad_h, pad_w
        int64_t dil_h, dil_w
        int64_t P, Q

    ctypedef struct fc_pool_geom:
        int64_t N, C, H, W
        int64_t kh, kw
        int64_t stride_h, stride_w
        int64_t pad_h, pad_w
        int64_t dil_h, dil_w
        int64_t P, Q
        int count_include_pad

    fc_status fc_conv_geom_init(fc_conv_geom *g, int64_t N, int64_t C, int64_t H, int64_t W,
                                int64_t K, int64_t R, int64_t S, int64_t groups,
                                int64_t stride_h, int64_t stride_w,
                                int64_t pad_top, int64_t pad_bottom,
                                int64_t pad_left, int64_t pad_right,
                                int64_t dil_h, int64_t dil_w)
    fc_status fc_pool_geom_init(fc_pool_geom *g, int64_t N, int64_t C, int64_t H, int64_t W,
                                int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w,
                                int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w,
                                int ceil_mode, int count_include_pad)

    int fc_openmp_enabled()
    int fc_max_threads()
    int fc_num_procs()
    size_t fc_workspace_cached()
    size_t fc_workspace_release()
    int fc_cpu_has_avx2()
    int fc_cpu_has_avx512()

    ctypedef enum fc_isa:
        FC_ISA_GENERIC
        FC_ISA_AVX2
        FC_ISA_AVX512
    int fc_isa_level()
    int fc_set_isa(int level)
    const char *fc_isa_name(int level)

    fc_status fc_im2col_f32(const fc_conv_geom *g, const float *x, float *cols, int nthreads)
    fc_status fc_im2col_f64(const fc_conv_geom *g, const double *x, double *cols, int nthreads)
    fc_status fc_col2im_f32(const fc_conv_geom *g, const float *cols, float *x, int nthreads)
    fc_status fc_col2im_f64(const fc_conv_geom *g, const double *cols, double *x, int nthreads)

    ctypedef enum fc_conv_algo:
        FC_ALGO_DIRECT
        FC_ALGO_GEMM
        FC_ALGO_WINOGRAD

    fc_status fc_conv2d_fwd_f32(const fc_conv_geom *g, int algo, const float *x, const float *w,
                                const float *b, float *y, int nthreads)
    fc_status fc_conv2d_fwd_f64(const fc_conv_geom *g, int algo, const double *x,
                                const double *w, const double *b, double *y, int nthreads)
    fc_status fc_conv2d_bwd_data_f32(const fc_conv_geom *g, int algo, const float *dy,
                                     const float *w, float *dx, int nthreads)
    fc_status fc_conv2d_bwd_data_f64(const fc_conv_geom *g, int algo, const double *dy,
                                     const double *w, double *dx, int nthreads)
    fc_status fc_conv2d_bwd_weight_f32(const fc_conv_geom *g, int algo, const float *dy,
                                       const float *x, float *dw, float *db, int nthreads)
    fc_status fc_conv2d_bwd_weight_f64(const fc_conv_geom *g, int algo, const double *dy,
                                       const double *x, double *dw, double *db, int nthreads)
    int fc_winograd_set_tile(int m)
    int fc_winograd_get_tile()

    fc_status fc_maxpool2d_fwd_f32(const fc_pool_geom *g, const float *x, float *y,
                                   int64_t *idx, int nthreads)
    fc_status fc_maxpool2d_fwd_values_f32(const fc_pool_geom *g, const float *x, float *y,
                                          int nthreads)
    fc_status fc_maxpool2d_fwd_values_f64(const fc_pool_geom *g, const double *x, double *y,
                                          int nthreads)
    fc_status fc_maxpool2d_fwd_f64(const fc_pool_geom *g, const double *x, double *y,
                                   int64_t *idx, int nthreads)
    fc_status fc_maxpool2d_bwd_f32(const fc_pool_geom *g, const float *dy, const int64_t *idx,
                                   float *dx, int nthreads)
    fc_status fc_maxpool2d_bwd_f64(const fc_pool_geom *g, const double *dy, const int64_t *idx,
                                   double *dx, int nthreads)
    fc_status fc_avgpool2d_fwd_f32(const fc_pool_geom *g, const float *x, float *y, int nthreads)
    fc_status fc_avgpool2d_fwd_f64(const fc_pool_geom *g, const double *x, double *y, int nthreads)
    fc_status fc_avgpool2d_bwd_f32(const fc_pool_geom *g, const float *dy, float *dx, int nthreads)
    fc_status fc_avgpool2d_bwd_f64(const fc_pool_geom *g, const double *dy, double *dx, int nthreads)

    fc_status fc_all_finite_f32(int64_t n, const float *x, int *finite, int nthreads)
    fc_status fc_all_finite_f64(int64_t n, const double *x, int *finite, int nthreads)
    fc_status fc_relu_fwd_f32(int64_t n, const float *x, float *y, int nthreads)
    fc_status fc_relu_fwd_f64(int64_t n, const double *x, double *y, int nthreads)
    fc_status fc_relu_bwd_f32(int64_t n, const float *dy, const float *x, float *dx, int nthreads)
    fc_status fc_relu_bwd_f64(int64_t n, const double *dy, const double *x, double *dx, int nthreads)
    fc_status fc_relu_inplace_f32(int64_t n, float *x, int nthreads)
    fc_status fc_relu_inplace_f64(int64_t n, double *x, int nthreads)
    fc_status fc_clip_inplace_f32(int64_t n, float *x, float lo, float hi, int nthreads)
    fc_status fc_clip_inplace_f64(int64_t n, double *x, double lo, double hi, int nthreads)
    fc_status fc_sgd_step_f32(int64_t n, float *p, const float *g, float *buf, float lr,
                              float momentum, float wd, int first, int nthreads)
    fc_status fc_sgd_step_f64(int64_t n, double *p, const double *g, double *buf, double lr,
                              double momentum, double wd, int first, int nthreads)
    fc_status fc_bias_add_f32(int64_t N, int64_t K, int64_t L, const float *b, float *y, int nthreads)
    fc_status fc_bias_add_f64(int64_t N, int64_t K, int64_t L, const double *b, double *y, int nthreads)
    fc_status fc_bias_grad_f32(int64_t N, int64_t K, int64_t L, const float *dy, float *db, int nthreads)
    fc_status fc_bias_grad_f64(int64_t N, int64_t K, int64_t L, const double *dy, double *db, int nthreads)

    # batch normalisation (csrc/batchnorm.c)
    fc_status fc_bn_fwd_train_f32(int64_t N, int64_t C, int64_t L, double eps, const float *x,
                                  const float *gamma, const float *beta, float *y, float *mean,
                                  float *var, float *invstd, int nthreads)
    fc_status fc_bn_fwd_train_f64(int64_t N, int64_t C, int64_t L, double eps, const double *x,
                                  const double *gamma, const double *beta, double *y,
                                  double *mean, double *var, double *invstd, int nthreads)
    fc_status fc_bn_affine_f32(int64_t N, int64_t C, int64_t L, const float *x, const float *m,
                               const float *s, const float *b, float *y, int nthreads)
    fc_status fc_bn_affine_f64(int64_t N, int64_t C, int64_t L, const double *x, const double *m,
                               const double *s, const double *b, double *y, int nthreads)
    fc_status fc_bn_bwd_f32(int64_t N, int64_t C, int64_t L, const float *x, const float *dy,
                            const float *mean, const float *invstd, const float *gamma,
                            float *sum_dy, float *sum_dy_xhat, float *dx, int nthreads)
    fc_status fc_bn_bwd_f64(int64_t N, int64_t C, int64_t L, const double *x, const double *dy,
                            const double *mean, const double *invstd, const double *gamma,
                            double *sum_dy, double *sum_dy_xhat, double *dx, int nthreads)


# fastconv's own GEMM (csrc/gemm.h, private to the package: bound for the tests
# and for functional.linear).
cdef extern from "gemm.h" nogil:
    fc_status fc_gemm_f32(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                          const float *A, int64_t lda, const float *B, int64_t ldb,
                          float beta, float *C, int64_t ldc, int nthreads)
    fc_status fc_gemm_f64(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                          const double *A, int64_t lda, const double *B, int64_t ldb,
                          double beta, double *C, int64_t ldc, int nthreads)


# The transposed GEMM convolution's weight packing (csrc/conv_gemmt.h, private).
cdef extern from "conv_gemmt.h" nogil:
    ctypedef struct fc_gemm_kernel:
        pass
    const fc_gemm_kernel *fc_gemm_kernel_f32()
    const fc_gemm_kernel *fc_gemm_kernel_f64()
    int fc_gemm_kernel_nr(const fc_gemm_kernel *kn)
    size_t fc_conv_gemmt_packed_bytes(const fc_gemm_kernel *kn, int64_t K, int64_t CRS)
    fc_status fc_conv_gemmt_pack_w(const fc_gemm_kernel *kn, int64_t K, int64_t CRS,
                                   const void *w, void *packed)


# The GEMM conv's forward weights packed once (csrc/conv_gemm_pre.h, private).
cdef extern from "conv_gemm_pre.h" nogil:
    size_t fc_conv_gemm_prepacked_bytes(const fc_conv_geom *g, int itemsize)
    fc_status fc_conv_gemm_prepack_f32(const fc_conv_geom *g, const float *w, void *dst,
                                       size_t nbytes)
    fc_status fc_conv_gemm_prepack_f64(const fc_conv_geom *g, const double *w, void *dst,
                                       size_t nbytes)


# The pointwise conv's weight packing (csrc/conv_pw.h, private).
cdef extern from "conv_pw.h" nogil:
    enum:
        FC_PW_MR
    int64_t fc_pw_packed_elems(int64_t K, int64_t C)
    void fc_pw_pack_w_f32(int64_t K, int64_t C, const float *w, float *wp)
    void fc_pw_pack_w_f64(int64_t K, int64_t C, const double *w, double *wp)


# The compiled inference plan's executor and the GEMV (csrc/plan.h, private).
from libc.stdint cimport int32_t

cdef extern from "plan.h" nogil:
    enum:
        FC_PLAN_CONV
        FC_PLAN_LINEAR
        FC_PLAN_MAXPOOL
        FC_PLAN_AVGPOOL
        FC_PLAN_GAP
        FC_PLAN_EPI
        FC_PLAN_COPY
        FC_PLAN_DIRECT
        FC_PLAN_GEMM
        FC_PLAN_WINOGRAD
        FC_PLAN_GEMV
        FC_PLAN_GEMMT
        FC_PLAN_DW
        FC_PLAN_PW
        FC_PLAN_STEM
        FC_EPI_AFFINE
        FC_EPI_BIAS
        FC_EPI_ADD
        FC_EPI_RELU
        FC_EPI_LEAKY
        FC_EPI_CLIP
        FC_EPI_SIGMOID
        FC_EPI_TANH
        FC_PLAN_MAX_EPI

    ctypedef struct fc_plan_ref:
        int32_t slot
        int64_t off

    ctypedef struct fc_plan_epi:
        int32_t kind
        const void *p0
        const void *p1
        fc_plan_ref src
        double a, b

    ctypedef struct fc_plan_op:
        int32_t kind, algo
        fc_conv_geom conv
        fc_pool_geom pool
        int32_t fused_pool
        int64_t N, C, L
        int64_t in_features
        int64_t ld
        int64_t kalign
        int64_t chunk
        int32_t pxsplit
        int32_t solo
        fc_plan_ref x, y, y2
        const void *w
        const void *b
        const void *wpack
        const void *wkern
        const void *wpre
        const int64_t *wpre_off
        int64_t wpre_kp
        int32_t nepi
        fc_plan_epi epi[6]

    void fc_plan_conv_units(int64_t N, int64_t nblk, int64_t chunk, int nth, int64_t *kp,
                            int64_t *step)
    fc_status fc_plan_run_f32(const fc_plan_op *ops, int64_t nops, const float *x, float *y,
                              float *arena, int nthreads, double *op_seconds)
    fc_status fc_plan_run_f64(const fc_plan_op *ops, int64_t nops, const double *x, double *y,
                              double *arena, int nthreads, double *op_seconds)
    fc_status fc_gemv_f32(int64_t M, int64_t K, const float *W, int64_t ldw, int64_t nv,
                          const float *x, int64_t ldx, const float *bias, float *y, int64_t ldy,
                          int nthreads)
    fc_status fc_gemv_f64(int64_t M, int64_t K, const double *W, int64_t ldw, int64_t nv,
                          const double *x, int64_t ldx, const double *bias, double *y,
                          int64_t ldy, int nthreads)


# ---- issue 14: Lp pooling, deformable convolution (csrc/ops_extra.h) --------
cdef extern from "fastconv.h" nogil:
    fc_status fc_lppool2d_fwd_f32(const fc_pool_geom *g, double p, const float *x, float *y,
                                  int nthreads)
    fc_status fc_lppool2d_fwd_f64(const fc_pool_geom *g, double p, const double *x, double *y,
                                  int nthreads)
    fc_status fc_lppool2d_bwd_f32(const fc_pool_geom *g, double p, const float *x,
                                  const float *dy, float *dx, int nthreads)
    fc_status fc_lppool2d_bwd_f64(const fc_pool_geom *g, double p, const double *x,
                                  const double *dy, double *dx, int nthreads)

    ctypedef struct fc_deform_geom:
        int64_t N, C, H, W
        int64_t K, R, S
        int64_t groups, offset_groups
        int64_t stride_h, stride_w
        int64_t pad_h, pad_w
        int64_t dil_h, dil_w
        int64_t P, Q

    fc_status fc_deform_geom_init(fc_deform_geom *g, int64_t N, int64_t C, int64_t H, int64_t W,
                                  int64_t K, int64_t R, int64_t S, int64_t groups,
                                  int64_t offset_groups, int64_t stride_h, int64_t stride_w,
                                  int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w)
    fc_status fc_deform_conv2d_fwd_f32(const fc_deform_geom *g, const float *x,
                                       const float *offset, const float *mask, const float *w,
                                       const float *b, float *y, int nthreads)
    fc_status fc_deform_conv2d_fwd_f64(const fc_deform_geom *g, const double *x,
                                       const double *offset, const double *mask,
                                       const double *w, const double *b, double *y,
                                       int nthreads)
    fc_status fc_deform_conv2d_bwd_f32(const fc_deform_geom *g, const float *x,
                                       const float *offset, const float *mask, const float *w,
                                       const float *dy, float *dx, float *doffset, float *dmask,
                                       float *dw, float *db, int nthreads)
    fc_status fc_deform_conv2d_bwd_f64(const fc_deform_geom *g, const double *x,
                                       const double *offset, const double *mask,
                                       const double *w, const double *dy, double *dx,
                                       double *doffset, double *dmask, double *dw, double *db,
                                       int nthreads)



# int8 inference kernels (csrc/qops.h, included at the end of fastconv.h).
from libc.stdint cimport uint8_t, int8_t

cdef extern from "fastconv.h" nogil:
    enum:
        FC_QOUT_I32
        FC_QOUT_U8
        FC_QOUT_F32
        FC_QGEMM_MAX_K
        FC_QBIAS_MAX
        FC_QGEMM_MR

    ctypedef struct fc_qepi:
        int32_t out_kind
        int32_t relu
        int32_t a_zero
        int32_t out_zero
        const int32_t *bias
        const float *mult

    int fc_cpu_has_avx512_vnni()
    int fc_qgemm_isa()
    int fc_qgemm_set_isa(int level)
    size_t fc_qgemm_packed_bytes(int64_t M, int64_t K)
    fc_status fc_qgemm_pack_w(int64_t M, int64_t K, const int8_t *w, int64_t ldw,
                              uint8_t *packed, int32_t *rowsum)
    fc_status fc_qgemm_u8s8(int64_t M, int64_t N, int64_t K, const uint8_t *packed_w,
                            const int32_t *rowsum, const uint8_t *a, int64_t lda, int a_trans,
                            const fc_qepi *epi, void *c, int64_t ldc_row, int64_t ldc_col,
                            int nthreads)
    fc_status fc_qlinear_u8(int64_t N, int64_t M, int64_t K, const uint8_t *x,
                            const uint8_t *packed_w, const int32_t *rowsum, const fc_qepi *epi,
                            void *y, int nthreads)
    fc_status fc_qim2col_u8(const fc_conv_geom *g, const uint8_t *x, uint8_t pad_value,
                            uint8_t *cols, int nthreads)
    fc_status fc_qconv2d_u8(const fc_conv_geom *g, const uint8_t *x, const uint8_t *packed_w,
                            const int32_t *rowsum, const fc_qepi *epi, void *y, int nthreads)
    fc_status fc_qconv2d_c4(const fc_conv_geom *g, const uint8_t *x_c4, const uint8_t *packed_w,
                            const int32_t *rowsum, const fc_qepi *epi, int y_c4, void *y,
                            int nthreads)
    fc_status fc_qreorder_to_c4(int64_t N, int64_t C, int64_t L, const uint8_t *x, uint8_t pad,
                                uint8_t *y, int nthreads)
    fc_status fc_qreorder_from_c4(int64_t N, int64_t C, int64_t L, const uint8_t *x, uint8_t *y,
                                  int nthreads)
    fc_status fc_qmaxpool2d_c4(const fc_pool_geom *g, const uint8_t *x, uint8_t *y, int nthreads)
    fc_status fc_qmaxpool2d_u8(const fc_pool_geom *g, const uint8_t *x, uint8_t *y, int nthreads)
    fc_status fc_qrelu_u8(int64_t n, const uint8_t *x, uint8_t zp, uint8_t *y, int nthreads)
    fc_status fc_quantize_u8(int64_t N, int64_t C, int64_t L, const float *x,
                             const float *inv_scale, const int32_t *zp, uint8_t *q, int nthreads)
    fc_status fc_quantize_u8_c4(int64_t N, int64_t C, int64_t L, const float *x, float inv_scale,
                                int32_t zp, uint8_t *y, int nthreads)
    fc_status fc_dequantize_u8(int64_t N, int64_t C, int64_t L, const uint8_t *q,
                               const float *scale, const int32_t *zp, float *y, int nthreads)
