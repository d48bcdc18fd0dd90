/* See qmath.h. Pure C99 with 64-bit intermediates; no libm (frexp/round are done by hand) so the
 * backend links on bare-metal targets without a maths library. */
#include "qmath.h"

#include <string.h>

int32_t q_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* Division by 2^31 truncating toward zero (what the nudge is designed for), done with shifts:
     * a 64-bit '/' compiles to a slow library call on 32-bit cores. */
    int64_t v = ab + nudge;
    return (int32_t)(v >= 0 ? (v >> 31) : -((-v) >> 31));
}

int32_t q_rdivpot(int32_t x, int exponent)
{
    if (exponent <= 0) {
        return x;
    }
    int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* Arithmetic right shift of a negative value: implementation-defined in C99 but arithmetic on
     * every compiler we target (gcc, clang), as TFLM itself assumes. */
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

#if REF_SINGLE_ROUNDING
int32_t q_mul(int32_t x, int32_t multiplier, int shift)
{
    int total_shift = 31 - shift;
    int64_t round = (int64_t)1 << (total_shift - 1);
    int64_t result = (int64_t)x * (int64_t)multiplier + round;
    return (int32_t)(result >> total_shift);
}

int32_t q_mul_lt1(int32_t x, int32_t multiplier, int shift)
{
    return q_mul(x, multiplier, shift);
}

int32_t q_mul_gt1(int32_t x, int32_t multiplier, int shift)
{
    return q_mul(x, multiplier, shift);
}
#else
int32_t q_mul(int32_t x, int32_t multiplier, int shift)
{
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    /* Multiplying (not shifting) keeps the behaviour of a signed left shift well defined. */
    return q_rdivpot(q_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

int32_t q_mul_lt1(int32_t x, int32_t multiplier, int shift)
{
    return q_rdivpot(q_srdhm(x, multiplier), -shift);
}

int32_t q_mul_gt1(int32_t x, int32_t multiplier, int shift)
{
    return q_srdhm((int32_t)((uint32_t)x << shift), multiplier);
}
#endif

/* frexp for finite positive or negative doubles via the IEEE-754 bit pattern. */
static double q_frexp(double v, int *exp)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int e = (int)((bits >> 52) & 0x7FF);
    if (v == 0.0) {
        *exp = 0;
        return v;
    }
    if (e == 0) { /* subnormal: normalise first */
        v *= 18014398509481984.0; /* 2^54 */
        memcpy(&bits, &v, sizeof bits);
        e = (int)((bits >> 52) & 0x7FF) - 54;
    }
    *exp = e - 1022;
    bits = (bits & ~((uint64_t)0x7FF << 52)) | ((uint64_t)1022 << 52);
    memcpy(&v, &bits, sizeof v);
    return v;
}

double q_round(double x)
{
    /* Half away from zero; exact for |x| < 2^52, and larger values are already integers. */
    if (!(x < 4503599627370496.0 && x > -4503599627370496.0)) {
        return x;
    }
    int64_t t = (int64_t)(x >= 0 ? x + 0.5 : x - 0.5);
    return (double)t;
}

int32_t q_round_sat(float x)
{
    if (!(x == x)) {
        return 0;
    }
    if (x >= 2147483520.0f) { /* the largest float below 2^31 */
        return INT32_MAX;
    }
    if (x <= -2147483648.0f) {
        return INT32_MIN;
    }
    return (int32_t)q_roundf(x);
}

float q_roundf(float x)
{
    if (!(x < 8388608.0f && x > -8388608.0f)) { /* already integral, or NaN/inf */
        return x;
    }
    /* Decide on the fractional part in float arithmetic, like roundf: x + 0.5f can round up. */
    float t = (float)(int32_t)x;
    float frac = x - t;
    if (frac >= 0.5f) {
        t += 1.0f;
    } else if (frac <= -0.5f) {
        t -= 1.0f;
    }
    return t;
}

void q_quantize_multiplier(double m, int32_t *multiplier, int *shift)
{
    /* Scales come from the model: NaN, negative or infinite ones are flushed instead of trusted. */
    if (!(m > 0.0)) {
        *multiplier = 0;
        *shift = 0;
        return;
    }
    if (m > 1e9) {
        *multiplier = 0x7FFFFFFF;
        *shift = 30;
        return;
    }
    if (m == 0.0) {
        *multiplier = 0;
        *shift = 0;
        return;
    }
    int e;
    double q = q_frexp(m, &e);
    int64_t fixed = (int64_t)q_round(q * 2147483648.0);
    if (fixed == ((int64_t)1 << 31)) {
        fixed /= 2;
        ++e;
    }
    if (e < -31) { /* everything would be shifted out: flush to zero like TFLM */
        e = 0;
        fixed = 0;
    }
    if (e > 30) {
        /* TFLM's single-rounding build saturates here; its default build would shift by 32 or more
         * (undefined behaviour) for such absurd scales. Saturating keeps ours defined; no real
         * model has a multiplier of 2^30. */
        e = 30;
        fixed = ((int64_t)1 << 31) - 1;
    }
    *multiplier = (int32_t)fixed;
    *shift = e;
}

int q_clz32(uint32_t x)
{
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}
