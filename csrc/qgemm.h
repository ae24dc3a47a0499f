/*
 * qgemm.h: the int8 GEMM driver behind qops.h (private to csrc/).
 *
 * One driver runs every int8 product: a set of independent "problems" (one
 * per image and group of a convolution, one for a plain GEMM or a Linear
 * layer) that share M, N, K. Each problem's uint8 operand is packed, one
 * block of columns at a time, by the source's kind: rows of a matrix, rows of
 * a Linear layer's input (the operand transposed), or a convolution's
 * implicit im2col (qconv.c fills the rows).
 */
#ifndef FC_QGEMM_H
#define FC_QGEMM_H

#include <stdint.h>
#include "fastconv.h"

enum { FC_QSRC_MATRIX = 0, FC_QSRC_ROWS = 1, FC_QSRC_C4 = 2 };

typedef struct {
    int kind;                     /* FC_QSRC_* */
    const uint8_t *a;             /* MATRIX: K x N (row stride lda); ROWS: N x K; C4: x (C4 layout) */
    int64_t lda;
    const fc_conv_geom *g;        /* C4 only */
    int64_t nprob;                /* C4: N images * groups; else 1 */
    const uint8_t *packed_w;      /* problem p uses packed_w + (p % groups) * wbytes */
    size_t wbytes;
    const int32_t *rowsum;        /* rows of all groups, K (or M) values */
    char *c;                      /* output */
    int64_t ldc_row, ldc_col;     /* in elements */
    int esize;                    /* bytes per output element */
    uint8_t pad;                  /* C4: the padding value (the input's zero point) */
    int c4_out;                   /* C4: write uint8 output in the C4 layout (c, ldc unused) */
} fc_qsrc;

/* Run the product: C = W . A (per problem), then the epilogue. M, N, K are the
 * per-problem sizes (validated by the caller, K <= FC_QGEMM_MAX_K). */
fc_status fc_qgemm_drive(const fc_qsrc *s, int64_t M, int64_t N, int64_t K, const fc_qepi *epi,
                         int nthreads);

/* Check an epilogue against M output rows (kinds, zero points, bias range,
 * finite multipliers). */
fc_status fc_qepi_check(const fc_qepi *epi, int64_t M);

/* Interleave 4 rows of n bytes into n 4-byte groups at dst (then zero groups
 * up to nr); returns 0x80 when a byte >= 128 was seen. */
unsigned fc_qinterleave4(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2,
                         const uint8_t *r3, int64_t n, int64_t nr, uint8_t *dst);

/* Fill dst[0, nc) with row k = (c, r, s) of the uint8 im2col of one image
 * (x_img: its C planes), columns j0 .. j0 + nc - 1 (column p*Q + q), padding
 * pad (qconv.c). */
void fc_qconv_fill_row(const fc_conv_geom *g, const uint8_t *x_img, int64_t c, int64_t r,
                       int64_t s, int64_t j0, int64_t nc, uint8_t pad, uint8_t *dst);

#endif
