/* Integer arithmetic of TFLite Micro's int8 reference kernels, written from its documented behaviour.
 *
 * Outputs must be bit-identical to TFLM's, so every rounding step follows TFLM's: the "double
 * rounding" MultiplyByQuantizedMultiplier by default, or TFLM's TFLITE_SINGLE_ROUNDING variant when
 * REF_SINGLE_ROUNDING is 1 (the host tests check which one the oracle was built with). */
#ifndef REF_QMATH_H
#define REF_QMATH_H

#include <stdint.h>

#ifndef REF_SINGLE_ROUNDING
#define REF_SINGLE_ROUNDING 0
#endif

/* round(a*b / 2^31) with ties away from zero; saturates the single overflow case INT32_MIN^2. */
int32_t q_srdhm(int32_t a, int32_t b);
/* x / 2^exponent rounded to nearest, ties away from zero (exponent 0..31). */
int32_t q_rdivpot(int32_t x, int exponent);
/* x * multiplier * 2^(shift-31), TFLM's MultiplyByQuantizedMultiplier. */
int32_t q_mul(int32_t x, int32_t multiplier, int shift);
/* TFLM's ...SmallerThanOneExp (shift <= 0) and ...GreaterThanOne (shift >= 0) variants. */
int32_t q_mul_lt1(int32_t x, int32_t multiplier, int shift);
int32_t q_mul_gt1(int32_t x, int32_t multiplier, int shift);
/* A real multiplier as a Q31 significand and a power-of-two exponent (TFLM's QuantizeMultiplier). */
void q_quantize_multiplier(double m, int32_t *multiplier, int *shift);
/* std::round for the activation-range and quantize arithmetic (half away from zero). */
float q_roundf(float x);
/* round() to int32, saturating (NaN: 0), where a float from the model or the host meets a cast. */
int32_t q_round_sat(float x);
double q_round(double x);
/* Count of leading zero bits; 32 for 0. */
int q_clz32(uint32_t x);

#endif
