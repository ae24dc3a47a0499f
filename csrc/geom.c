/*
 * geom.c: shape arithmetic and validation for convolution and pooling.
 *
 * Every kernel trusts the geometry it is given, so all checking happens here:
 * extents positive, groups dividing the channel counts, the output at least
 * 1x1, and every buffer's element count and every padded extent
 * representable in int64 (products are formed with overflow checks).
 * fc_conv_geom_check / fc_pool_geom_check (fc_internal.h) are that check on
 * a filled struct: the *_geom_init functions end with it, and every kernel
 * entry point calls it once before its loops (against structs filled by
 * hand); nothing else validates a geometry.
 */
#include "fc_internal.h"

/* *out = a * b, or FC_EOVERFLOW when the product does not fit (a, b >= 0). */
static fc_status mul_checked(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0) return FC_EINVAL;
    if (a != 0 && b > INT64_MAX / a) return FC_EOVERFLOW;
    *out = a * b;
    return FC_OK;
}

/* Product of n non-negative extents, overflow-checked. */
static fc_status prod_checked(int n, const int64_t *v, int64_t *out)
{
    int64_t acc = 1;
    for (int i = 0; i < n; i++) {
        fc_status st = mul_checked(acc, v[i], &acc);
        if (st != FC_OK) return st;
    }
    *out = acc;
    return FC_OK;
}

/* Output extent floor((in + pad_total - dil*(k-1) - 1)/stride) + 1, overflow-checked. */
static fc_status conv_out(int64_t in, int64_t pad_total, int64_t dil, int64_t k, int64_t stride,
                          int64_t *out)
{
    int64_t span;
    fc_status st = mul_checked(dil, k - 1, &span);
    if (st != FC_OK) return st;
    if (in > INT64_MAX - pad_total) return FC_EOVERFLOW;
    int64_t num = in + pad_total - span - 1;
    if (num < 0) return FC_EINVAL;           /* kernel larger than the padded input */
    *out = num / stride + 1;
    return FC_OK;
}

/* The fields of a convolution geometry other than P and Q: FC_EINVAL when
 * one is out of range. */
static fc_status conv_fields(const fc_conv_geom *g)
{
    if (g->N < 0 || g->C < 1 || g->H < 1 || g->W < 1 || g->K < 1 || g->R < 1 || g->S < 1
        || g->groups < 1)
        return FC_EINVAL;
    if (g->stride_h < 1 || g->stride_w < 1 || g->dil_h < 1 || g->dil_w < 1) return FC_EINVAL;
    if (g->pad_h < 0 || g->pad_w < 0) return FC_EINVAL;
    if (g->C % g->groups != 0 || g->K % g->groups != 0) return FC_EINVAL;
    return FC_OK;
}

/* (out-1)*stride <= INT64_MAX/2, and the padded extent one axis reads,
 * (out-1)*stride + dil*(k-1) + 1, fits: FC_EOVERFLOW otherwise (out, k,
 * stride, dil >= 1). */
static fc_status extent_fits(int64_t out, int64_t stride, int64_t dil, int64_t k)
{
    int64_t t, span;
    if (mul_checked(out - 1, stride, &t) != FC_OK || t > INT64_MAX / 2) return FC_EOVERFLOW;
    if (mul_checked(dil, k - 1, &span) != FC_OK || span > INT64_MAX - 1 - t) return FC_EOVERFLOW;
    return FC_OK;
}

/* The sizes of a convolution geometry whose fields are in range: every
 * buffer a kernel may index, in elements, fits in int64 bytes (x, y, w and
 * one image's columns; with FC_GEOM_IM2COL the batch's columns, in
 * elements), and so do the padded extents. */
static fc_status conv_sizes(const fc_conv_geom *g, int need)
{
    int64_t n_elems;
    fc_status st;
    const int64_t xs[4] = {g->N, g->C, g->H, g->W}, ys[4] = {g->N, g->K, g->P, g->Q};
    const int64_t ws[4] = {g->K, g->C / g->groups, g->R, g->S};
    const int64_t cs[5] = {g->C, g->R, g->S, g->P, g->Q};
    const int64_t *all[4] = {xs, ys, ws, cs};
    const int lens[4] = {4, 4, 4, 5};
    for (int i = 0; i < 4; i++) {
        st = prod_checked(lens[i], all[i], &n_elems);
        if (st != FC_OK) return st;
        if (n_elems > INT64_MAX / 8) return FC_EOVERFLOW;
    }
    if ((st = extent_fits(g->P, g->stride_h, g->dil_h, g->R)) != FC_OK) return st;
    if ((st = extent_fits(g->Q, g->stride_w, g->dil_w, g->S)) != FC_OK) return st;
    if (need & FC_GEOM_IM2COL) {
        const int64_t bc[2] = {g->N, n_elems};      /* n_elems = C*R*S*P*Q */
        if ((st = prod_checked(2, bc, &n_elems)) != FC_OK) return st;
    }
    return FC_OK;
}

/* The check of a filled convolution geometry (fc_internal.h): fields, then
 * P and Q, then sizes. */
fc_status fc_conv_geom_check(const fc_conv_geom *g, int need)
{
    if (g == NULL) return FC_EINVAL;
    fc_conv_geom t = *g;
    if (need & FC_GEOM_IM2COL) t.K = t.groups = 1;    /* not read by im2col / col2im */
    fc_status st = conv_fields(&t);
    if (st != FC_OK) return st;
    if (t.P < 1 || t.Q < 1) return FC_EINVAL;
    return conv_sizes(&t, need);
}

/* Fill *g from the layer's parameters (fastconv.h): the fields, the pads
 * that only enter P and Q, then P and Q (FC_EINVAL when the kernel is larger
 * than the padded input), then the sizes; *g is written only on success. */
fc_status fc_conv_geom_init(fc_conv_geom *g, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t K, int64_t R, int64_t S, int64_t groups,
                            int64_t stride_h, int64_t stride_w,
                            int64_t pad_top, int64_t pad_bottom,
                            int64_t pad_left, int64_t pad_right,
                            int64_t dil_h, int64_t dil_w)
{
    if (g == NULL) return FC_EINVAL;
    fc_conv_geom t;
    t.N = N; t.C = C; t.H = H; t.W = W;
    t.K = K; t.R = R; t.S = S; t.groups = groups;
    t.stride_h = stride_h; t.stride_w = stride_w;
    t.pad_h = pad_top; t.pad_w = pad_left;
    t.dil_h = dil_h; t.dil_w = dil_w;
    t.P = t.Q = 1;
    fc_status st = conv_fields(&t);
    if (st != FC_OK) return st;
    if (pad_bottom < 0 || pad_right < 0) return FC_EINVAL;
    if (pad_top > INT64_MAX - pad_bottom || pad_left > INT64_MAX - pad_right) return FC_EOVERFLOW;
    st = conv_out(H, pad_top + pad_bottom, dil_h, R, stride_h, &t.P);
    if (st != FC_OK) return st;
    st = conv_out(W, pad_left + pad_right, dil_w, S, stride_w, &t.Q);
    if (st != FC_OK) return st;
    /* P, Q >= 1 now; (P-1)*stride + dil*(R-1) + 1 <= H + pad_top + pad_bottom */
    if ((st = conv_sizes(&t, 0)) != FC_OK) return st;
    *g = t;
    return FC_OK;
}

/* Pooling output extent, PyTorch's rule: with ceil_mode the division rounds up,
 * but the last window must start inside the input or the left padding. */
static fc_status pool_out(int64_t in, int64_t pad, int64_t dil, int64_t k, int64_t stride,
                          int ceil_mode, int64_t *out)
{
    int64_t span;
    fc_status st = mul_checked(dil, k - 1, &span);
    if (st != FC_OK) return st;
    if (pad > (INT64_MAX - in) / 2 || stride > INT64_MAX - (in + 2 * pad)) return FC_EOVERFLOW;
    /* num may be negative: with ceil_mode a window larger than the padded
     * input still yields one output when it starts inside it (as PyTorch). */
    int64_t num = in + 2 * pad - span - 1 + (ceil_mode ? stride - 1 : 0);
    if (num < 0) return FC_EINVAL;
    int64_t o = num / stride + 1;
    if (ceil_mode && (o - 1) * stride >= in + pad) o--;
    if (o < 1) return FC_EINVAL;
    *out = o;
    return FC_OK;
}

/* The fields of a pooling geometry other than P and Q: FC_EINVAL when one
 * is out of range. */
static fc_status pool_fields(const fc_pool_geom *g)
{
    if (g->N < 0 || g->C < 1 || g->H < 1 || g->W < 1 || g->kh < 1 || g->kw < 1) return FC_EINVAL;
    if (g->stride_h < 1 || g->stride_w < 1 || g->dil_h < 1 || g->dil_w < 1) return FC_EINVAL;
    if (g->pad_h < 0 || g->pad_w < 0) return FC_EINVAL;
    return FC_OK;
}

/* The sizes of a pooling geometry whose fields are in range: input and
 * output fit in int64 bytes, and so do the padded extents. */
static fc_status pool_sizes(const fc_pool_geom *g)
{
    int64_t n_elems;
    fc_status st;
    const int64_t xs[4] = {g->N, g->C, g->H, g->W}, ys[4] = {g->N, g->C, g->P, g->Q};
    if ((st = prod_checked(4, xs, &n_elems)) != FC_OK) return st;
    if (n_elems > INT64_MAX / 8) return FC_EOVERFLOW;
    if ((st = prod_checked(4, ys, &n_elems)) != FC_OK) return st;
    if (n_elems > INT64_MAX / 8) return FC_EOVERFLOW;
    if ((st = extent_fits(g->P, g->stride_h, g->dil_h, g->kh)) != FC_OK) return st;
    return extent_fits(g->Q, g->stride_w, g->dil_w, g->kw);
}

/* FC_OK when every window holds at least one real input element (its taps
 * inside the input form a non-empty interval on both axes), else FC_EINVAL. */
static fc_status pool_windows(const fc_pool_geom *g)
{
    int64_t lo, hi;
    for (int64_t p = 0; p < g->P; p++) {
        fc_interval(p * g->stride_h - g->pad_h, g->dil_h, g->H, g->kh, &lo, &hi);
        if (lo == hi) return FC_EINVAL;
    }
    for (int64_t q = 0; q < g->Q; q++) {
        fc_interval(q * g->stride_w - g->pad_w, g->dil_w, g->W, g->kw, &lo, &hi);
        if (lo == hi) return FC_EINVAL;
    }
    return FC_OK;
}

/* The check of a filled pooling geometry (fc_internal.h): fields, then P and
 * Q, then sizes, then (FC_GEOM_WINDOWS) the windows. */
fc_status fc_pool_geom_check(const fc_pool_geom *g, int need)
{
    if (g == NULL) return FC_EINVAL;
    fc_status st = pool_fields(g);
    if (st != FC_OK) return st;
    if (g->P < 1 || g->Q < 1) return FC_EINVAL;
    if ((st = pool_sizes(g)) != FC_OK) return st;
    return (need & FC_GEOM_WINDOWS) ? pool_windows(g) : FC_OK;
}

/* Fill *g from the layer's parameters (fastconv.h): the fields, the padding
 * rule, P and Q (PyTorch's ceil_mode rule), then the sizes; *g is written
 * only on success. Windows with no real element are left to the kernels
 * that cannot take them (FC_GEOM_WINDOWS). */
fc_status fc_pool_geom_init(fc_pool_geom *g, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w,
                            int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w,
                            int ceil_mode, int count_include_pad)
{
    if (g == NULL) return FC_EINVAL;
    fc_pool_geom t;
    t.N = N; t.C = C; t.H = H; t.W = W;
    t.kh = kh; t.kw = kw;
    t.stride_h = stride_h; t.stride_w = stride_w;
    t.pad_h = pad_h; t.pad_w = pad_w;
    t.dil_h = dil_h; t.dil_w = dil_w;
    t.P = t.Q = 1;
    t.count_include_pad = count_include_pad ? 1 : 0;
    fc_status st = pool_fields(&t);
    if (st != FC_OK) return st;
    int64_t eh, ew;
    if (mul_checked(dil_h, kh - 1, &eh) != FC_OK || mul_checked(dil_w, kw - 1, &ew) != FC_OK)
        return FC_EOVERFLOW;
    /* Padding at most half the dilated kernel (PyTorch's rule): ceil(e / 2),
     * written so that e = INT64_MAX does not overflow. */
    if (pad_h > eh / 2 + eh % 2 || pad_w > ew / 2 + ew % 2) return FC_EINVAL;
    st = pool_out(H, pad_h, dil_h, kh, stride_h, ceil_mode, &t.P);
    if (st != FC_OK) return st;
    st = pool_out(W, pad_w, dil_w, kw, stride_w, ceil_mode, &t.Q);
    if (st != FC_OK) return st;
    /* (P-1)*stride + dil*(k-1) + 1 <= H + 2*pad + stride - 1, which fits */
    if ((st = pool_sizes(&t)) != FC_OK) return st;
    *g = t;
    return FC_OK;
}
