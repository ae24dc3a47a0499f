/*
 * qops.h: fastconv's int8 inference kernels (included at the end of fastconv.h).
 *
 * Number formats (the usual "asymmetric activations, symmetric weights"):
 *   activations  uint8 a with a zero point za:   real = scale_a * (a - za)
 *   weights      int8 w, zero point 0, one scale per output channel
 *   accumulator  int32:  acc[i][j] = sum_k w[i][k] * (a[k][j] - za) + bias[i]
 *
 * The product is a GEMM u8 x s8 -> s32, C (M x N) = W (M x K) . A (K x N):
 * W the weights (packed once by fc_qgemm_pack_w), A the uint8 operand (a
 * matrix, the rows of a Linear layer's input, or a convolution's im2col,
 * packed on the fly), one output row per output channel. The requantization
 * epilogue (fc_qepi) runs on the int32 tile while it is in cache:
 *   FC_QOUT_I32  c = acc                                    (int32, for tests)
 *   FC_QOUT_U8   v = (float)acc * mult[i];  v = min(max(v, lo), 255 - zo);
 *                c = rint(v) + zo, with lo = -zo, or lo = 0 under ReLU (the
 *                output's real zero is the level zo)
 *   FC_QOUT_F32  c = (float)acc * mult[i], then max(c, 0) with ReLU
 * Every step is one IEEE float32 operation (no fused multiply-add) and rint
 * rounds half to even, so every ISA variant and NumPy give identical bits.
 *
 * Limits, checked (FC_EINVAL): K <= FC_QGEMM_MAX_K, so that |sum w*a| <=
 * 255 * 128 * K < 2^30 never overflows int32; every bias in
 * [-FC_QBIAS_MAX, FC_QBIAS_MAX] = [-2^30, 2^30]. The zero-point term
 * za * rowsum(w) is folded into the bias with wrap-around int32 arithmetic,
 * which gives the exact accumulator whenever the exact value fits in int32
 * (it always does within the limits above).
 *
 * ISA variants (one build, chosen at run time, see fc_qgemm_isa):
 *   avx512_vnni  vpdpbusd: 4 u8*s8 products summed into each int32 lane.
 *   avx2         vpmaddubsw + vpmaddwd. vpmaddubsw sums two u8*s8 products
 *                into int16 with saturation, and 2 * 255 * 127 > 32767, so
 *                the activations are split: a = (a & 127) + 128 * (a >> 7).
 *                The low part gives pair sums <= 2 * 127 * 128 = 32512 (never
 *                saturates, for any int8 weight); the high bit is multiplied
 *                separately and scaled by 128 in vpmaddwd, in a second pass
 *                that runs only when the operand panel holds a byte >= 128
 *                (seen while the first pass loads it). Exact for every input;
 *                7-bit activations never pay the second pass.
 *   generic      portable C.
 */
#ifndef FASTCONV_QOPS_H
#define FASTCONV_QOPS_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FC_QGEMM_MAX_K 32768
#define FC_QBIAS_MAX (1 << 30)
/* Rows of a packed weight panel: the same for every ISA, so packed weights
 * never depend on the CPU. */
#define FC_QGEMM_MR 8

enum { FC_QOUT_I32 = 0, FC_QOUT_U8 = 1, FC_QOUT_F32 = 2 };

/* The epilogue of one int8 GEMM / conv / linear. bias (int32, M values, may be
 * NULL) is in units of scale_a * scale_w[i]; mult (M floats) is
 * scale_a * scale_w[i] / scale_out for FC_QOUT_U8 and scale_a * scale_w[i]
 * for FC_QOUT_F32 (unused for FC_QOUT_I32; must be finite). */
typedef struct {
    int32_t out_kind;   /* FC_QOUT_* */
    int32_t relu;       /* 1: clamp below at the output's real zero */
    int32_t a_zero;     /* zero point of the uint8 operand, 0..255 */
    int32_t out_zero;   /* zero point of a uint8 output, 0..255 */
    const int32_t *bias;
    const float *mult;
} fc_qepi;

/* ---- CPU feature and ISA choice --------------------------------------- */
int fc_cpu_has_avx512_vnni(void);  /* AVX-512 F + BW + VL + VNNI usable */
/* The variant the int8 kernels use now: 2 avx512_vnni, 1 avx2, 0 generic.
 * By default the best the CPU runs within fastconv's GEMM level
 * (FASTCONV_ISA / fc_set_isa: "avx512" allows VNNI); fc_qgemm_set_isa
 * forces a level (capped by the CPU; -1 goes back to the default) and
 * returns the level now in use. */
int fc_qgemm_isa(void);
int fc_qgemm_set_isa(int level);

/* ---- packed weights --------------------------------------------------- */
/* Bytes of M x K int8 weights packed into 8-row panels of 4-byte k groups. */
size_t fc_qgemm_packed_bytes(int64_t M, int64_t K);
/* Pack w (M x K, row stride ldw) into packed (fc_qgemm_packed_bytes bytes)
 * and write rowsum[i] = sum_k w[i][k]. */
fc_status fc_qgemm_pack_w(int64_t M, int64_t K, const int8_t *restrict w, int64_t ldw,
                          uint8_t *restrict packed, int32_t *restrict rowsum);

/* ---- GEMM --------------------------------------------------------------- */
/* C (M x N) = W (M x K, packed, with its rowsum) . A (K x N uint8, row-major
 * with row stride lda; or, when a_trans, stored as N x K rows with stride
 * lda, i.e. a Linear layer's input), then the epilogue. C element (i, j) is
 * written at c + (i * ldc_row + j * ldc_col) * element size. */
fc_status fc_qgemm_u8s8(int64_t M, int64_t N, int64_t K, const uint8_t *restrict packed_w,
                        const int32_t *restrict rowsum, const uint8_t *restrict a, int64_t lda,
                        int a_trans, const fc_qepi *epi, void *restrict c, int64_t ldc_row,
                        int64_t ldc_col, int nthreads);

/* Linear layer: y (N, M) = x (N, K) . W^T, epilogue per output feature. */
fc_status fc_qlinear_u8(int64_t N, int64_t M, int64_t K, const uint8_t *restrict x,
                        const uint8_t *restrict packed_w, const int32_t *restrict rowsum,
                        const fc_qepi *epi, void *restrict y, int nthreads);

/* ---- convolution -------------------------------------------------------- */
/* The C4 layout of uint8 activations: (N, ceil(C/4), H, W, 4), channel c of
 * pixel (h, w) at [n][c/4][h][w][c%4]; the 4 bytes of a pixel are one k group
 * of the GEMM, so a stride-1 convolution reads its operand in place (qgemm.c).
 * Channels beyond C (the last quad) are filled with the zero point. */
fc_status fc_qreorder_to_c4(int64_t N, int64_t C, int64_t L, const uint8_t *restrict x,
                            uint8_t pad, uint8_t *restrict y, int nthreads);
fc_status fc_qreorder_from_c4(int64_t N, int64_t C, int64_t L, const uint8_t *restrict x,
                              uint8_t *restrict y, int nthreads);

/* im2col of uint8: cols (N, C*R*S, P*Q) as fc_im2col_f32, padding = pad_value
 * (the zero point, so padding is a real zero). */
fc_status fc_qim2col_u8(const fc_conv_geom *g, const uint8_t *restrict x, uint8_t pad_value,
                        uint8_t *restrict cols, int nthreads);
/* Convolution y = conv(x, w) + epilogue, x uint8 in the C4 layout, padding =
 * epi->a_zero. packed_w: for each group, its K/groups x (Cgq*R*S*4) weights
 * in (channel quad, r, s, channel % 4) order (zero for channels beyond C),
 * packed by fc_qgemm_pack_w, one group after the other; Cgq = ceil(C/4) with
 * one group, C/groups/4 with several (C/groups must then be a multiple of 4);
 * rowsum: K values. y: NCHW (N, K, P, Q) uint8 / int32 / float32 as
 * epi->out_kind, or, with y_c4, uint8 in the C4 layout (K/groups a multiple of
 * 4 when groups > 1). */
fc_status fc_qconv2d_c4(const fc_conv_geom *g, const uint8_t *restrict x_c4,
                        const uint8_t *restrict packed_w, const int32_t *restrict rowsum,
                        const fc_qepi *epi, int y_c4, void *restrict y, int nthreads);
/* The same from an NCHW input (changed to C4 in a temporary buffer), NCHW out. */
fc_status fc_qconv2d_u8(const fc_conv_geom *g, const uint8_t *restrict x,
                        const uint8_t *restrict packed_w, const int32_t *restrict rowsum,
                        const fc_qepi *epi, void *restrict y, int nthreads);

/* ---- elementwise and pooling on uint8 ------------------------------------ */
/* Max pooling on uint8 (N, C, H, W) -> (N, C, P, Q): the maximum of the taps
 * inside the input (padding never wins, as -inf padding; the scale and zero
 * point carry over unchanged since quantization is monotonic). */
fc_status fc_qmaxpool2d_u8(const fc_pool_geom *g, const uint8_t *restrict x,
                           uint8_t *restrict y, int nthreads);
/* The same on C4 images: g->C counts channel quads (4 channels per pixel). */
fc_status fc_qmaxpool2d_c4(const fc_pool_geom *g, const uint8_t *restrict x,
                           uint8_t *restrict y, int nthreads);
/* ReLU on uint8 with zero point zp: y = max(x, zp). */
fc_status fc_qrelu_u8(int64_t n, const uint8_t *restrict x, uint8_t zp, uint8_t *restrict y,
                      int nthreads);
/* Quantize float32 -> uint8: q = rint(clamp(x * inv_scale + zp, 0, 255))
 * (a NaN gives 0). Dequantize: y = (float)(q - zp) * scale. Both over n
 * elements; with C > 1 and L > 0 the scale / zero point is per channel of a
 * (N, C, L) layout (inv_scale / scale, zp arrays of C values), else per tensor
 * (C = 1). */
fc_status fc_quantize_u8(int64_t N, int64_t C, int64_t L, const float *restrict x,
                         const float *restrict inv_scale, const int32_t *restrict zp,
                         uint8_t *restrict q, int nthreads);
/* Quantize float32 NCHW (N, C, L = H*W) per tensor straight into the C4
 * layout (channels beyond C = zp). */
fc_status fc_quantize_u8_c4(int64_t N, int64_t C, int64_t L, const float *restrict x,
                            float inv_scale, int32_t zp, uint8_t *restrict y, int nthreads);
fc_status fc_dequantize_u8(int64_t N, int64_t C, int64_t L, const uint8_t *restrict q,
                           const float *restrict scale, const int32_t *restrict zp,
                           float *restrict y, int nthreads);

#ifdef __cplusplus
}
#endif
#endif /* FASTCONV_QOPS_H */
