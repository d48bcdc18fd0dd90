/* SOFTMAX int8 -> int8, the gemmlowp-style fixed-point algorithm TFLM's reference kernel uses:
 * input differences from the row maximum scaled to Q5.26, exp() on negative values by a Taylor
 * polynomial around -1/8 and a barrel shifter of exp(-2^k) constants, the sum of exps in Q12.19, its
 * reciprocal by Newton-Raphson, and the product rounded into the int8 output (scale 1/256, zp -128).
 * Fixed-point values are plain int32 raws; the comments name their Q format (integer bits). */
#include "bench/status.h"
#include "qmath.h"
#include "ref.h"

#define SCALED_DIFF_INT_BITS 5   /* Q5.26 input to exp() */
#define ACCUM_INT_BITS 12        /* Q12.19 sum of exps */

/* Saturating x * 2^e for e > 0, rounding x / 2^-e for e < 0 (gemmlowp's SaturatingRoundingMultiplyByPOT). */
static int32_t mul_pot(int32_t x, int e)
{
    if (e < 0) {
        return q_rdivpot(x, -e);
    }
    if (e == 0) {
        return x;
    }
    int32_t threshold = (int32_t)(((uint32_t)1 << (31 - e)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << e);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out. */
static int32_t exp_quarter(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668; /* exp(-1/8) in Q0.31 */
    const int32_t one_third = 715827883;            /* 1/3 in Q0.31 */
    int32_t x = a + (1 << 28);                      /* a + 1/8 */
    int32_t x2 = q_srdhm(x, x);
    int32_t x3 = q_srdhm(x2, x);
    int32_t x4 = q_srdhm(x2, x2);
    int32_t x4_over_4 = mul_pot(x4, -2);
    int32_t poly = mul_pot(q_srdhm(x4_over_4 + x3, one_third) + x2, -1);
    return exp_minus_one_eighth + q_srdhm(exp_minus_one_eighth, x + poly);
}

/* exp(a) for a <= 0 in Q5.26, result in Q0.31. */
static int32_t exp_negative(int32_t a)
{
    const int frac_bits = 31 - SCALED_DIFF_INT_BITS;
    const int32_t one_quarter = 1 << (frac_bits - 2);
    const int32_t mask = one_quarter - 1;
    int32_t a_mod_quarter_minus_quarter = (a & mask) - one_quarter;
    int32_t result = exp_quarter(mul_pot(a_mod_quarter_minus_quarter, SCALED_DIFF_INT_BITS));
    int32_t remainder = a_mod_quarter_minus_quarter - a;
    /* exp(-2^k) in Q0.31 for k = -2 .. 4 (bits of the remainder above the quarter). */
    static const int32_t factors[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    for (int k = -2; k <= 4; ++k) {
        if (SCALED_DIFF_INT_BITS > k && (remainder & (1 << (frac_bits + k)))) {
            result = q_srdhm(result, factors[k + 2]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1), Q0.31 in, Q0.31 out (Newton-Raphson in Q2.29). */
static int32_t one_over_one_plus_x(int32_t a)
{
    int64_t sum = (int64_t)a + INT32_MAX;
    int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c48_17 = 1515870810, c_neg32_17 = -1010580540; /* Q2.29 */
    const int32_t one_q2 = 1 << 29;
    int32_t x = c48_17 + q_srdhm(half_denominator, c_neg32_17);
    for (int i = 0; i < 3; ++i) {
        int32_t hdx = q_srdhm(half_denominator, x);          /* Q2.29 */
        int32_t one_minus = one_q2 - hdx;                    /* Q2.29 */
        x = x + mul_pot(q_srdhm(x, one_minus), 2);           /* Q4 product rescaled to Q2 */
    }
    return mul_pot(x, 1); /* x/2 viewed as Q1.30, rescaled to Q0.31 */
}

static void eval_softmax(const ref_op *op, ref_tensor *t)
{
    const ref_softmax_params *p = &op->p.softmax;
    const ref_tensor *in = &t[op->in[0]], *out = &t[op->out];
    const int depth = in->dims[in->ndims - 1];
    const int rows = (int)(ref_elems(in) / (uint32_t)depth);
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    for (int r = 0; r < rows; ++r) {
        const int8_t *xr = x + r * depth;
        int8_t *yr = y + r * depth;
        int32_t max = -128;
        for (int i = 0; i < depth; ++i) {
            max = xr[i] > max ? xr[i] : max;
        }
        int32_t sum = 0; /* Q12.19 */
        for (int i = 0; i < depth; ++i) {
            int32_t diff = (int32_t)xr[i] - max;
            if (diff >= p->diff_min) {
                int32_t scaled = q_mul_gt1(diff, p->in_mult, p->in_left_shift);
                sum += mul_pot(exp_negative(scaled), -ACCUM_INT_BITS);
            }
        }
        int headroom_plus_one = q_clz32((uint32_t)sum);
        int bits_over_unit = ACCUM_INT_BITS - headroom_plus_one;
        int32_t shifted_minus_one = (int32_t)(((uint32_t)sum << headroom_plus_one) - ((uint32_t)1 << 31));
        int32_t scale = one_over_one_plus_x(shifted_minus_one);
        for (int i = 0; i < depth; ++i) {
            int32_t diff = (int32_t)xr[i] - max;
            if (diff >= p->diff_min) {
                int32_t scaled = q_mul_gt1(diff, p->in_mult, p->in_left_shift);
                int32_t e = exp_negative(scaled);
                int32_t v = q_rdivpot(q_srdhm(scale, e), bits_over_unit + 31 - 8) - 128;
                yr[i] = (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
            } else {
                yr[i] = -128;
            }
        }
    }
}

int ref_prepare_softmax(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err)
{
    ref_softmax_params *p = &op->p.softmax;
    float beta = 0.0f;
    if (has_opt && fb_f32(&c->fb, opt, 0, 0.0f, &beta)) {
        return ref_invalid(err, "damaged SoftmaxOptions");
    }
    const ref_tensor *in = &c->tensors[op->in[0]], *out = &c->tensors[op->out];
    if (in->type != T_INT8 || out->type != T_INT8) {
        return ref_unsupported(err, op, "only int8 input and output");
    }
    if (out->zero_point != -128 || out->scale != 1.0f / 256.0f) {
        return ref_unsupported(err, op, "int8 output must have scale 1/256 and zero point -128");
    }
    if (in->ndims < 1 || ref_elems(in) != ref_elems(out) || in->dims[in->ndims - 1] <= 0 || in->scale <= 0.0f) {
        return ref_invalid(err, "SOFTMAX shapes or scales are wrong");
    }
    if (in->dims[in->ndims - 1] >= 4096) { /* the Q12.19 sum of exps would overflow */
        return ref_unsupported(err, op, "rows of 4096 or more values");
    }
#if REF_SINGLE_ROUNDING
    const double max_multiplier = 1073741823.0; /* 2^30 - 1 */
#else
    const double max_multiplier = 2147483647.0; /* 2^31 - 1 */
#endif
    double real = (double)beta * (double)in->scale * (double)(1 << (31 - SCALED_DIFF_INT_BITS));
    int shift;
    q_quantize_multiplier(real < max_multiplier ? real : max_multiplier, &p->in_mult, &shift);
    if (shift < 0) {
        return ref_unsupported(err, op, "beta * input scale too small for the fixed-point kernel");
    }
    p->in_left_shift = shift;
    /* The largest input difference that still matters, TFLM's CalculateInputRadius (floored). */
    double radius = (double)((1 << SCALED_DIFF_INT_BITS) - 1) * (double)((int64_t)1 << (31 - SCALED_DIFF_INT_BITS)) /
                    (double)((int64_t)1 << shift);
    p->diff_min = -(int32_t)radius; /* radius >= 0: truncation is floor */
    op->eval = eval_softmax;
    return 0;
}
