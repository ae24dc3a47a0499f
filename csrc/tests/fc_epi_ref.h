/*
 * fc_epi_ref.h: the plan epilogue's steps (fc_dw_epi, conv_dw.h) applied one
 * after the other to one output value v of channel k, in double: the
 * reference of the C tests of the kernels that apply them in registers
 * (depthwise, pointwise, stem). src is the residual input at that output.
 * Include after conv_dw.h (or a header that includes it) and <math.h>.
 */
#ifndef FC_EPI_REF_H
#define FC_EPI_REF_H

static double epi_ref(const fc_dw_epi *e, int n, double v, int64_t k, double src)
{
    for (int j = 0; j < n; j++) {
        const double *p0 = (const double *)e[j].p0, *p1 = (const double *)e[j].p1;
        switch (e[j].kind) {
        case FC_DW_AFFINE: v = v * p0[k] + p1[k]; break;
        case FC_DW_BIAS: v = v + p0[k]; break;
        case FC_DW_ADD: v = v + src; break;
        case FC_DW_RELU: v = v <= 0 ? 0 : v; break;
        case FC_DW_LEAKY: v = v > 0 ? v : v * e[j].a; break;
        case FC_DW_CLIP: v = v < e[j].a ? e[j].a : v; v = v > e[j].b ? e[j].b : v; break;
        case FC_DW_SIGMOID: v = 1.0 / (1.0 + exp(-v)); break;
        case FC_DW_TANH: v = tanh(v); break;
        default: break;
        }
    }
    return v;
}

#endif
