/*
 * test_kernels_c.c: stand-alone C check of im2col / col2im, pooling, ReLU and
 * bias kernels against naive loops (per-element bounds tests, no tricks).
 *
 * Built and run by tools/ctests.sh (with and without OpenMP, then under
 * ASan + UBSan). By hand, from the repository root (every csrc .c file: the
 * kernels need the runtime, the geometry check and the workspace cache):
 *   gcc -std=c99 -O1 -g -Wall -Wextra -fopenmp -Icsrc csrc/tests/test_kernels_c.c \
 *       csrc/[a-z]*.c -o /tmp/tkc -lm && /tmp/tkc
 * (add -fsanitize=address,undefined to check memory too). Inputs are small
 * integers, so float32 sums are exact and every comparison is exact; results
 * are also compared across thread counts (must be bitwise identical). The
 * pooling cases run under every SIMD variant the CPU has (fc_set_isa).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fastconv.h"

#define FC_TEST_SEED 88172645463325252ULL
#include "fc_check.h"

static int n_empty = 0;
static int64_t rint_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1)); }

/* same value or both NaN */
static int same(double a, double b) { return (a == b) || (a != a && b != b); }

static void fill_int(double *a, int64_t n, int lo, int hi)
{
    for (int64_t i = 0; i < n; i++) a[i] = (double)rint_in(lo, hi);
}
static float *to_f32(const double *a, int64_t n)
{
    float *f = malloc((size_t)(n ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) f[i] = (float)a[i];
    return f;
}

/* ---------------- im2col / col2im ---------------- */

static void naive_im2col(const fc_conv_geom *g, const double *x, double *cols)
{
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t c = 0; c < g->C; c++)
            for (int64_t r = 0; r < g->R; r++)
                for (int64_t s = 0; s < g->S; s++)
                    for (int64_t p = 0; p < g->P; p++)
                        for (int64_t q = 0; q < g->Q; q++) {
                            int64_t h = p * g->stride_h - g->pad_h + r * g->dil_h;
                            int64_t w = q * g->stride_w - g->pad_w + s * g->dil_w;
                            int64_t row = c * g->R * g->S + r * g->S + s;
                            double v = 0;
                            if (h >= 0 && h < g->H && w >= 0 && w < g->W)
                                v = x[((n * g->C + c) * g->H + h) * g->W + w];
                            cols[((n * g->C * g->R * g->S) + row) * g->P * g->Q + p * g->Q + q] = v;
                        }
}

static void naive_col2im(const fc_conv_geom *g, const double *cols, double *x)
{
    memset(x, 0, (size_t)(g->N * g->C * g->H * g->W) * sizeof(double));
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t c = 0; c < g->C; c++)
            for (int64_t r = 0; r < g->R; r++)
                for (int64_t s = 0; s < g->S; s++)
                    for (int64_t p = 0; p < g->P; p++)
                        for (int64_t q = 0; q < g->Q; q++) {
                            int64_t h = p * g->stride_h - g->pad_h + r * g->dil_h;
                            int64_t w = q * g->stride_w - g->pad_w + s * g->dil_w;
                            int64_t row = c * g->R * g->S + r * g->S + s;
                            if (h >= 0 && h < g->H && w >= 0 && w < g->W)
                                x[((n * g->C + c) * g->H + h) * g->W + w] +=
                                    cols[((n * g->C * g->R * g->S) + row) * g->P * g->Q + p * g->Q + q];
                        }
}

static void test_im2col_case(void)
{
    fc_conv_geom g;
    int64_t N, C, H, W, R, S, sh, sw, pt, pb, pl, pr, dh, dw;
    do {
        N = rint_in(0, 3); C = rint_in(1, 4); H = rint_in(1, 9); W = rint_in(1, 9);
        R = rint_in(1, 4); S = rint_in(1, 4); sh = rint_in(1, 3); sw = rint_in(1, 3);
        pt = rint_in(0, 3); pb = rint_in(0, 3); pl = rint_in(0, 3); pr = rint_in(0, 3);
        dh = rint_in(1, 3); dw = rint_in(1, 3);
    } while (fc_conv_geom_init(&g, N, C, H, W, 1, R, S, 1, sh, sw, pt, pb, pl, pr, dh, dw) != FC_OK);

    int64_t nx = N * C * H * W, nc = N * C * R * S * g.P * g.Q;
    double *x = malloc((size_t)(nx + 1) * sizeof(double));
    double *cref = malloc((size_t)(nc + 1) * sizeof(double));
    double *cout = malloc((size_t)(nc + 1) * sizeof(double));
    double *xref = malloc((size_t)(nx + 1) * sizeof(double));
    double *xout = malloc((size_t)(nx + 1) * sizeof(double));
    fill_int(x, nx, -9, 9);
    naive_im2col(&g, x, cref);
    for (int nt = 1; nt <= 3; nt += 2) {
        for (int64_t i = 0; i < nc; i++) cout[i] = 12345.0;   /* every entry must be written */
        CHECK(fc_im2col_f64(&g, x, cout, nt) == FC_OK, "im2col f64 status");
        for (int64_t i = 0; i < nc; i++)
            CHECK(cout[i] == cref[i], "im2col f64 [%lld] %g vs %g", (long long)i, cout[i], cref[i]);
        float *xf = to_f32(x, nx), *cf = malloc((size_t)(nc + 1) * sizeof(float));
        CHECK(fc_im2col_f32(&g, xf, cf, nt) == FC_OK, "im2col f32 status");
        for (int64_t i = 0; i < nc; i++) CHECK(cf[i] == (float)cref[i], "im2col f32 [%lld]", (long long)i);
        free(xf); free(cf);
    }
    /* col2im of random columns */
    fill_int(cref, nc, -9, 9);
    naive_col2im(&g, cref, xref);
    for (int nt = 1; nt <= 3; nt += 2) {
        for (int64_t i = 0; i < nx; i++) xout[i] = 777.0;     /* must be zeroed first */
        CHECK(fc_col2im_f64(&g, cref, xout, nt) == FC_OK, "col2im f64 status");
        for (int64_t i = 0; i < nx; i++)
            CHECK(xout[i] == xref[i], "col2im f64 [%lld] %g vs %g", (long long)i, xout[i], xref[i]);
        float *cf = to_f32(cref, nc), *xf = malloc((size_t)(nx + 1) * sizeof(float));
        for (int64_t i = 0; i < nx; i++) xf[i] = 5.0f;
        CHECK(fc_col2im_f32(&g, cf, xf, nt) == FC_OK, "col2im f32 status");
        for (int64_t i = 0; i < nx; i++) CHECK(xf[i] == (float)xref[i], "col2im f32 [%lld]", (long long)i);
        free(xf); free(cf);
    }
    /* adjointness: <im2col(x), c> == <x, col2im(c)> (exact with small ints) */
    naive_im2col(&g, x, cout);
    double a = 0, b = 0;
    for (int64_t i = 0; i < nc; i++) a += cout[i] * cref[i];
    for (int64_t i = 0; i < nx; i++) b += x[i] * xref[i];
    CHECK(a == b, "adjoint %g vs %g", a, b);
    free(x); free(cref); free(cout); free(xref); free(xout);
}

/* ---------------- pooling ---------------- */

/* Every window holds a real element (the kernels reject the others). */
static int windows_ok(const fc_pool_geom *g)
{
    for (int64_t p = 0; p < g->P; p++) {
        int any = 0;
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t h = p * g->stride_h - g->pad_h + i * g->dil_h;
            any |= h >= 0 && h < g->H;
        }
        if (!any) return 0;
    }
    for (int64_t q = 0; q < g->Q; q++) {
        int any = 0;
        for (int64_t j = 0; j < g->kw; j++) {
            int64_t w = q * g->stride_w - g->pad_w + j * g->dil_w;
            any |= w >= 0 && w < g->W;
        }
        if (!any) return 0;
    }
    return 1;
}

static void naive_maxpool(const fc_pool_geom *g, const double *x, double *y, int64_t *idx)
{
    for (int64_t nc = 0; nc < g->N * g->C; nc++)
        for (int64_t p = 0; p < g->P; p++)
            for (int64_t q = 0; q < g->Q; q++) {
                int have = 0;
                double best = 0;
                int64_t bi = -1;
                for (int64_t i = 0; i < g->kh; i++)
                    for (int64_t j = 0; j < g->kw; j++) {
                        int64_t h = p * g->stride_h - g->pad_h + i * g->dil_h;
                        int64_t w = q * g->stride_w - g->pad_w + j * g->dil_w;
                        if (h < 0 || h >= g->H || w < 0 || w >= g->W) continue;
                        double v = x[nc * g->H * g->W + h * g->W + w];
                        if (!have) { have = 1; best = v; bi = h * g->W + w; continue; }
                        if (isnan(best)) continue;
                        if (isnan(v) || v > best) { best = v; bi = h * g->W + w; }
                    }
                y[nc * g->P * g->Q + p * g->Q + q] = best;
                idx[nc * g->P * g->Q + p * g->Q + q] = bi;
            }
}

static void naive_avgpool(const fc_pool_geom *g, const double *x, double *y)
{
    for (int64_t nc = 0; nc < g->N * g->C; nc++)
        for (int64_t p = 0; p < g->P; p++)
            for (int64_t q = 0; q < g->Q; q++) {
                int64_t hs = p * g->stride_h - g->pad_h, ws = q * g->stride_w - g->pad_w;
                int64_t he = hs + g->kh < g->H + g->pad_h ? hs + g->kh : g->H + g->pad_h;
                int64_t we = ws + g->kw < g->W + g->pad_w ? ws + g->kw : g->W + g->pad_w;
                int64_t pool = (he - hs) * (we - ws);
                double sum = 0;
                int64_t cnt = 0;
                for (int64_t h = hs; h < he; h++)
                    for (int64_t w = ws; w < we; w++)
                        if (h >= 0 && h < g->H && w >= 0 && w < g->W) {
                            sum += x[nc * g->H * g->W + h * g->W + w];
                            cnt++;
                        }
                y[nc * g->P * g->Q + p * g->Q + q] = sum / (double)(g->count_include_pad ? pool : cnt);
            }
}

static void naive_avgpool_bwd(const fc_pool_geom *g, const double *dy, double *dx)
{
    memset(dx, 0, (size_t)(g->N * g->C * g->H * g->W) * sizeof(double));
    for (int64_t nc = 0; nc < g->N * g->C; nc++)
        for (int64_t p = 0; p < g->P; p++)
            for (int64_t q = 0; q < g->Q; q++) {
                int64_t hs = p * g->stride_h - g->pad_h, ws = q * g->stride_w - g->pad_w;
                int64_t he = hs + g->kh < g->H + g->pad_h ? hs + g->kh : g->H + g->pad_h;
                int64_t we = ws + g->kw < g->W + g->pad_w ? ws + g->kw : g->W + g->pad_w;
                int64_t pool = (he - hs) * (we - ws), cnt = 0;
                for (int64_t h = hs; h < he; h++)
                    for (int64_t w = ws; w < we; w++)
                        cnt += h >= 0 && h < g->H && w >= 0 && w < g->W;
                double gv = dy[nc * g->P * g->Q + p * g->Q + q] / (double)(g->count_include_pad ? pool : cnt);
                for (int64_t h = hs; h < he; h++)
                    for (int64_t w = ws; w < we; w++)
                        if (h >= 0 && h < g->H && w >= 0 && w < g->W)
                            dx[nc * g->H * g->W + h * g->W + w] += gv;
            }
}

static void test_pool_case(int want_dil)
{
    fc_pool_geom g;
    int64_t N, C, H, W, kh, kw, sh, sw, ph, pw, dh = 1, dw = 1;
    int ceil_mode, cip;
    for (;;) {
        N = rint_in(0, 3); C = rint_in(1, 3); H = rint_in(1, 10); W = rint_in(1, 10);
        if (rint_in(0, 7) == 0) W = rint_in(100, 600);   /* several interior blocks */
        kh = rint_in(1, 4); kw = rint_in(1, 4); sh = rint_in(1, 3); sw = rint_in(1, 3);
        ph = rint_in(0, 2); pw = rint_in(0, 2);
        if (want_dil) { dh = rint_in(1, 3); dw = rint_in(1, 3); }
        ceil_mode = (int)rint_in(0, 1); cip = (int)rint_in(0, 1);
        if (fc_pool_geom_init(&g, N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, ceil_mode, cip) != FC_OK)
            continue;
        if (windows_ok(&g)) break;
        /* a geometry with an empty window must be rejected, nothing written */
        double xb[1] = {1}, yb[1] = {42};
        int64_t ib[1] = {42};
        n_empty++;
        CHECK(fc_maxpool2d_fwd_f64(&g, xb, yb, ib, 1) == FC_EINVAL, "empty window accepted");
        CHECK(yb[0] == 42 && ib[0] == 42, "written on error");
    }
    int64_t nx = N * C * H * W, ny = N * C * g.P * g.Q;
    double *x = malloc((size_t)(nx + 1) * sizeof(double));
    double *yref = malloc((size_t)(ny + 1) * sizeof(double));
    double *yout = malloc((size_t)(ny + 1) * sizeof(double));
    int64_t *iref = malloc((size_t)(ny + 1) * sizeof(int64_t));
    int64_t *iout = malloc((size_t)(ny + 1) * sizeof(int64_t));
    double *dy = malloc((size_t)(ny + 1) * sizeof(double));
    double *dxref = malloc((size_t)(nx + 1) * sizeof(double));
    double *dxout = malloc((size_t)(nx + 1) * sizeof(double));
    fill_int(x, nx, -3, 3);                       /* many ties */
    for (int64_t i = 0; i < nx; i++) {            /* sprinkle NaN and -inf */
        uint64_t u = rng_next() % 16;
        if (u == 0) x[i] = NAN;
        else if (u == 1) x[i] = -INFINITY;
        else if (u == 2) x[i] = INFINITY;
    }
    if (nx > 0 && rint_in(0, 3) == 0) for (int64_t i = 0; i < nx; i++) x[i] = -INFINITY;
    fill_int(dy, ny, -5, 5);

    naive_maxpool(&g, x, yref, iref);
    for (int nt = 1; nt <= 3; nt += 2) {
        CHECK(fc_maxpool2d_fwd_f64(&g, x, yout, iout, nt) == FC_OK, "maxpool f64 status");
        for (int64_t i = 0; i < ny; i++) {
            CHECK(same(yout[i], yref[i]) && iout[i] == iref[i],
                  "maxpool f64 [%lld] %g/%lld vs %g/%lld", (long long)i, yout[i],
                  (long long)iout[i], yref[i], (long long)iref[i]);
        }
        /* the values-only forward: the same values */
        for (int64_t i = 0; i < ny; i++) yout[i] = 99;
        CHECK(fc_maxpool2d_fwd_values_f64(&g, x, yout, nt) == FC_OK, "values f64 status");
        for (int64_t i = 0; i < ny; i++)
            CHECK(same(yout[i], yref[i]), "values f64 [%lld]", (long long)i);
        float *xf = to_f32(x, nx), *yf = malloc((size_t)(ny + 1) * sizeof(float));
        CHECK(fc_maxpool2d_fwd_f32(&g, xf, yf, iout, nt) == FC_OK, "maxpool f32 status");
        for (int64_t i = 0; i < ny; i++)
            CHECK(same(yf[i], yref[i]) && iout[i] == iref[i], "maxpool f32 [%lld]", (long long)i);
        for (int64_t i = 0; i < ny; i++) yf[i] = 99;
        CHECK(fc_maxpool2d_fwd_values_f32(&g, xf, yf, nt) == FC_OK, "values f32 status");
        for (int64_t i = 0; i < ny; i++)
            CHECK(same(yf[i], yref[i]), "values f32 [%lld]", (long long)i);
        free(xf); free(yf);
    }
    /* max backward */
    memset(dxref, 0, (size_t)(nx + 1) * sizeof(double));
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t i = 0; i < g.P * g.Q; i++)
            dxref[nc * H * W + iref[nc * g.P * g.Q + i]] += dy[nc * g.P * g.Q + i];
    for (int nt = 1; nt <= 3; nt += 2) {
        for (int64_t i = 0; i < nx; i++) dxout[i] = 99;
        CHECK(fc_maxpool2d_bwd_f64(&g, dy, iref, dxout, nt) == FC_OK, "maxpool bwd status");
        for (int64_t i = 0; i < nx; i++) CHECK(dxout[i] == dxref[i], "maxpool bwd [%lld]", (long long)i);
        float *dyf = to_f32(dy, ny), *dxf = malloc((size_t)(nx + 1) * sizeof(float));
        CHECK(fc_maxpool2d_bwd_f32(&g, dyf, iref, dxf, nt) == FC_OK, "maxpool bwd f32 status");
        for (int64_t i = 0; i < nx; i++) CHECK(dxf[i] == (float)dxref[i], "maxpool bwd f32");
        free(dyf); free(dxf);
    }
    if (ny > 0) {   /* a bad index: FC_EINVAL (dx is then partly written) */
        int64_t k = rint_in(0, ny - 1), saved = iref[k];
        iref[k] = rint_in(0, 1) ? -1 : H * W;
        CHECK(fc_maxpool2d_bwd_f64(&g, dy, iref, dxout, 2) == FC_EINVAL, "bad idx accepted");
        iref[k] = saved;
    }
    /* average pooling (no dilation) */
    if (dh == 1 && dw == 1) {
        fill_int(x, nx, -9, 9);
        naive_avgpool(&g, x, yref);
        naive_avgpool_bwd(&g, dy, dxref);
        for (int nt = 1; nt <= 3; nt += 2) {
            CHECK(fc_avgpool2d_fwd_f64(&g, x, yout, nt) == FC_OK, "avgpool status");
            for (int64_t i = 0; i < ny; i++)
                CHECK(yout[i] == yref[i], "avgpool f64 [%lld] %.17g vs %.17g", (long long)i, yout[i], yref[i]);
            float *xf = to_f32(x, nx), *yf = malloc((size_t)(ny + 1) * sizeof(float));
            CHECK(fc_avgpool2d_fwd_f32(&g, xf, yf, nt) == FC_OK, "avgpool f32 status");
            for (int64_t i = 0; i < ny; i++)
                CHECK(fabs(yf[i] - yref[i]) <= 1e-6 * (1 + fabs(yref[i])), "avgpool f32 [%lld]", (long long)i);
            free(xf); free(yf);
            for (int64_t i = 0; i < nx; i++) dxout[i] = 99;
            CHECK(fc_avgpool2d_bwd_f64(&g, dy, dxout, nt) == FC_OK, "avgpool bwd status");
            for (int64_t i = 0; i < nx; i++)
                CHECK(fabs(dxout[i] - dxref[i]) <= 1e-12 * (1 + fabs(dxref[i])), "avgpool bwd [%lld] %.17g vs %.17g",
                      (long long)i, dxout[i], dxref[i]);
        }
    } else {
        CHECK(fc_avgpool2d_fwd_f64(&g, x, yout, 1) == FC_EINVAL, "avgpool with dilation accepted");
    }
    free(x); free(yref); free(yout); free(iref); free(iout); free(dy); free(dxref); free(dxout);
}

static void test_pool_special(void)
{
    /* 1 plane 2x3, kernel 2x3: NaN after a NaN, ties, all -inf */
    fc_pool_geom g;
    CHECK(fc_pool_geom_init(&g, 1, 1, 2, 3, 2, 3, 1, 1, 0, 0, 1, 1, 0, 1) == FC_OK, "geom");
    double y; int64_t i;
    double a[6] = {1, NAN, 5, NAN, 7, 1};
    fc_maxpool2d_fwd_f64(&g, a, &y, &i, 1);
    CHECK(isnan(y) && i == 1, "first NaN wins: %g %lld", y, (long long)i);
    double b[6] = {1, 3, 3, 2, 3, 0};
    fc_maxpool2d_fwd_f64(&g, b, &y, &i, 1);
    CHECK(y == 3 && i == 1, "first max wins");
    double c[6] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    fc_maxpool2d_fwd_f64(&g, c, &y, &i, 1);
    CHECK(y == -INFINITY && i == 0, "all -inf");
    /* with padding 1 on 1x1 input, kernel 3: only element 0 is real */
    CHECK(fc_pool_geom_init(&g, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1) == FC_OK, "geom2");
    double d[1] = {-INFINITY};
    fc_maxpool2d_fwd_f64(&g, d, &y, &i, 1);
    CHECK(y == -INFINITY && i == 0, "padded -inf");
    /* avg pool count_include_pad: 1x1 input, k=3, pad 1 -> divisor 9 or 1 */
    double e[1] = {9};
    fc_avgpool2d_fwd_f64(&g, e, &y, 1);
    CHECK(y == 1.0, "cip divisor 9: %g", y);
    g.count_include_pad = 0;
    fc_avgpool2d_fwd_f64(&g, e, &y, 1);
    CHECK(y == 9.0, "no-cip divisor 1");
    /* NULL / bad geometry */
    CHECK(fc_maxpool2d_fwd_f64(NULL, d, &y, &i, 1) == FC_EINVAL, "NULL g");
    CHECK(fc_maxpool2d_fwd_f64(&g, NULL, &y, &i, 1) == FC_EINVAL, "NULL x");
    CHECK(fc_maxpool2d_fwd_values_f64(&g, NULL, &y, 1) == FC_EINVAL, "values: NULL x");
    CHECK(fc_maxpool2d_fwd_values_f64(&g, d, NULL, 1) == FC_EINVAL, "values: NULL y");
    CHECK(fc_maxpool2d_fwd_values_f64(NULL, d, &y, 1) == FC_EINVAL, "values: NULL g");
    fc_pool_geom bad = g; bad.stride_h = 0;
    CHECK(fc_avgpool2d_bwd_f64(&bad, d, &y, 1) == FC_EINVAL, "stride 0");
    /* N == 0: no-op, NULL fine */
    CHECK(fc_pool_geom_init(&g, 0, 2, 4, 4, 2, 2, 2, 2, 0, 0, 1, 1, 0, 1) == FC_OK, "geom0");
    CHECK(fc_maxpool2d_fwd_f32(&g, NULL, NULL, NULL, 4) == FC_OK, "N=0 max");
    CHECK(fc_maxpool2d_fwd_values_f32(&g, NULL, NULL, 4) == FC_OK, "N=0 max values");
    CHECK(fc_maxpool2d_bwd_f32(&g, NULL, NULL, NULL, 4) == FC_OK, "N=0 max bwd");
    CHECK(fc_avgpool2d_fwd_f32(&g, NULL, NULL, 4) == FC_OK, "N=0 avg");
    CHECK(fc_avgpool2d_bwd_f32(&g, NULL, NULL, 4) == FC_OK, "N=0 avg bwd");
    fc_conv_geom cg;
    CHECK(fc_conv_geom_init(&cg, 0, 2, 4, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1) == FC_OK, "cgeom0");
    CHECK(fc_im2col_f64(&cg, NULL, NULL, 4) == FC_OK, "N=0 im2col");
    CHECK(fc_col2im_f64(&cg, NULL, NULL, 4) == FC_OK, "N=0 col2im");
    CHECK(fc_im2col_f64(NULL, NULL, NULL, 4) == FC_EINVAL, "NULL g im2col");
}

/* ---------------- elementwise ---------------- */

/* fc_all_finite: one inf / NaN anywhere (block edges, each thread's share) is
 * found; huge finite values are finite. */
static void test_all_finite(void)
{
    const int64_t sizes[] = {1, 4095, 4096, 4097, (1 << 16) + 5, 200003};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        const int64_t n = sizes[t];
        double *x = malloc((size_t)n * sizeof(double));
        float *xf = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) x[i] = i % 2 ? 1.7e308 : -3.0;
        for (int64_t i = 0; i < n; i++) xf[i] = i % 2 ? 3.3e38f : -3.0f;
        const int64_t spots[] = {0, n / 2, n - 1, n > 4096 ? 4096 : n - 1, n > 100001 ? 100001 : 0};
        for (int nt = 1; nt <= 3; nt += 2) {
            int fin = -1;
            CHECK(fc_all_finite_f64(n, x, &fin, nt) == FC_OK && fin == 1, "finite f64 n=%lld", (long long)n);
            CHECK(fc_all_finite_f32(n, xf, &fin, nt) == FC_OK && fin == 1, "finite f32 n=%lld", (long long)n);
            for (size_t s = 0; s < sizeof spots / sizeof spots[0]; s++) {
                const int64_t i = spots[s];
                const double keep = x[i];
                const float keepf = xf[i];
                const double bad[3] = {INFINITY, -INFINITY, NAN};
                for (int b = 0; b < 3; b++) {
                    x[i] = bad[b];
                    xf[i] = (float)bad[b];
                    CHECK(fc_all_finite_f64(n, x, &fin, nt) == FC_OK && fin == 0,
                          "f64 bad at %lld of %lld", (long long)i, (long long)n);
                    CHECK(fc_all_finite_f32(n, xf, &fin, nt) == FC_OK && fin == 0,
                          "f32 bad at %lld of %lld", (long long)i, (long long)n);
                }
                x[i] = keep;
                xf[i] = keepf;
            }
        }
        free(x);
        free(xf);
    }
    int fin = -1;
    CHECK(fc_all_finite_f64(0, NULL, &fin, 1) == FC_OK && fin == 1, "n = 0");
    CHECK(fc_all_finite_f64(-1, NULL, &fin, 1) == FC_EINVAL, "n < 0");
    CHECK(fc_all_finite_f64(3, NULL, &fin, 1) == FC_EINVAL, "NULL x");
    CHECK(fc_all_finite_f32(3, (const float *)&fin, NULL, 1) == FC_EINVAL, "NULL result");
}

static void test_eltwise(void)
{
    const int64_t sizes[] = {0, 1, 7, 8, 33, 1000, (1 << 16) + 5, 200003};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int64_t n = sizes[t];
        double *x = malloc((size_t)(n + 1) * sizeof(double)), *dy = malloc((size_t)(n + 1) * sizeof(double));
        double *y = malloc((size_t)(n + 1) * sizeof(double)), *dx = malloc((size_t)(n + 1) * sizeof(double));
        fill_int(x, n, -5, 5);
        fill_int(dy, n, -5, 5);
        for (int64_t i = 0; i < n; i++) {
            if (i % 13 == 3) x[i] = NAN;
            if (i % 17 == 4) x[i] = -0.0;
            if (i % 19 == 5) dy[i] = NAN;
        }
        for (int nt = 1; nt <= 3; nt += 2) {
            CHECK(fc_relu_fwd_f64(n, x, y, nt) == FC_OK, "relu status");
            CHECK(fc_relu_bwd_f64(n, dy, x, dx, nt) == FC_OK, "relu bwd status");
            float *xf = to_f32(x, n), *dyf = to_f32(dy, n);
            float *yf = malloc((size_t)(n + 1) * sizeof(float)), *dxf = malloc((size_t)(n + 1) * sizeof(float));
            fc_relu_fwd_f32(n, xf, yf, nt);
            fc_relu_bwd_f32(n, dyf, xf, dxf, nt);
            for (int64_t i = 0; i < n; i++) {
                double ey = isnan(x[i]) ? NAN : (x[i] > 0 ? x[i] : 0.0);
                double edx = x[i] <= 0 ? 0.0 : dy[i];   /* NaN x passes dy, as torch */
                CHECK(same(y[i], ey) && !signbit(y[i]), "relu [%lld]", (long long)i);
                CHECK(same(yf[i], ey) && !signbit(yf[i]), "relu f32 [%lld]", (long long)i);
                CHECK(same(dx[i], edx) && same(dxf[i], edx), "relu bwd [%lld]", (long long)i);
            }
            free(xf); free(dyf); free(yf); free(dxf);
        }
        free(x); free(dy); free(y); free(dx);
    }
    CHECK(fc_relu_fwd_f32(-1, NULL, NULL, 1) == FC_EINVAL, "relu n<0");
    CHECK(fc_relu_fwd_f32(3, NULL, NULL, 1) == FC_EINVAL, "relu NULL");

    /* bias */
    for (int rep = 0; rep < 40; rep++) {
        int64_t N = rint_in(0, 3), K = rint_in(0, 5), L = rep == 0 ? 70000 : rint_in(0, 37);
        int64_t n = N * K * L;
        double *y = malloc((size_t)(n + 1) * sizeof(double)), *y0 = malloc((size_t)(n + 1) * sizeof(double));
        double *b = malloc((size_t)(K + 1) * sizeof(double)), *db = malloc((size_t)(K + 1) * sizeof(double));
        fill_int(y0, n, -9, 9);
        fill_int(b, K, -9, 9);
        for (int nt = 1; nt <= 3; nt += 2) {
            memcpy(y, y0, (size_t)n * sizeof(double));
            CHECK(fc_bias_add_f64(N, K, L, b, y, nt) == FC_OK, "bias add status");
            for (int64_t i = 0; i < n; i++) CHECK(y[i] == y0[i] + b[(i / L) % K], "bias add");
            float *yf = to_f32(y0, n), *bf = to_f32(b, K), *dbf = malloc((size_t)(K + 1) * sizeof(float));
            fc_bias_add_f32(N, K, L, bf, yf, nt);
            for (int64_t i = 0; i < n; i++) CHECK(yf[i] == (float)(y0[i] + b[(i / L) % K]), "bias add f32");
            for (int64_t k = 0; k < K; k++) db[k] = 99;
            CHECK(fc_bias_grad_f64(N, K, L, y0, db, nt) == FC_OK, "bias grad status");
            CHECK(fc_bias_grad_f32(N, K, L, yf, dbf, nt) == FC_OK, "bias grad f32 status");
            for (int64_t k = 0; k < K; k++) {
                double s = 0;
                for (int64_t nn = 0; nn < N; nn++)
                    for (int64_t l = 0; l < L; l++) s += y0[(nn * K + k) * L + l] + b[k];
                double s0 = 0;
                for (int64_t nn = 0; nn < N; nn++)
                    for (int64_t l = 0; l < L; l++) s0 += y0[(nn * K + k) * L + l];
                CHECK(db[k] == s0, "bias grad [%lld] %g vs %g", (long long)k, db[k], s0);
                CHECK(dbf[k] == (float)s, "bias grad f32 [%lld]", (long long)k);
            }
            free(yf); free(bf); free(dbf);
        }
        free(y); free(y0); free(b); free(db);
    }
    CHECK(fc_bias_grad_f64(-1, 1, 1, NULL, NULL, 1) == FC_EINVAL, "bias grad N<0");
    CHECK(fc_bias_add_f64(INT64_MAX, 4, 4, NULL, NULL, 1) == FC_EOVERFLOW, "bias overflow");
}

int main(void)
{
    for (int i = 0; i < 400; i++) test_im2col_case();
    const int prev = fc_isa_level();
    for (int lv = FC_ISA_GENERIC; lv <= FC_ISA_AVX512; lv++) {
        if (fc_set_isa(lv) != lv) continue;     /* not on this CPU */
        for (int i = 0; i < 400; i++) test_pool_case(0);
        for (int i = 0; i < 400; i++) test_pool_case(1);
        test_pool_special();
    }
    fc_set_isa(prev);
    test_eltwise();
    test_all_finite();
    printf("%d checks, %d failures (%d geometries with an empty window rejected)\n",
           n_check, n_fail, n_empty);
    return n_fail != 0;
}
