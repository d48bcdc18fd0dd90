/* ADD (int8), RESHAPE (any type), QUANTIZE (float32/int8 -> int8) and DEQUANTIZE (int8 -> float32),
 * with TFLM's reference arithmetic. */
#include <string.h>

#include "bench/status.h"
#include "qmath.h"
#include "ref.h"

static int32_t clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static void eval_add(const ref_op *op, ref_tensor *t)
{
    const ref_add_params *p = &op->p.add;
    const ref_tensor *a = &t[op->in[0]], *b = &t[op->in[1]], *out = &t[op->out];
    const int8_t *x1 = (const int8_t *)a->data, *x2 = (const int8_t *)b->data;
    int8_t *y = (int8_t *)out->data;
    uint32_t n = ref_elems(out);
    for (uint32_t i = 0; i < n; ++i) {
        int32_t v1 = x1[p->broadcast == 1 ? 0 : i] - a->zero_point;
        int32_t v2 = x2[p->broadcast == 2 ? 0 : i] - b->zero_point;
        int32_t s1 = q_mul_lt1((int32_t)((uint32_t)v1 << p->left_shift), p->in1_mult, p->in1_shift);
        int32_t s2 = q_mul_lt1((int32_t)((uint32_t)v2 << p->left_shift), p->in2_mult, p->in2_shift);
        int32_t r = q_mul_lt1(s1 + s2, p->out_mult, p->out_shift) + out->zero_point;
        y[i] = (int8_t)clamp(r, p->act_min, p->act_max);
    }
}

int ref_prepare_add(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err)
{
    ref_add_params *p = &op->p.add;
    uint8_t act = 0;
    if (has_opt && fb_u8(&c->fb, opt, 0, 0, &act)) {
        return ref_invalid(err, "damaged AddOptions");
    }
    if (op->n_in < 2 || op->in[1] < 0) {
        return ref_invalid(err, "ADD needs two inputs");
    }
    const ref_tensor *a = &c->tensors[op->in[0]], *b = &c->tensors[op->in[1]], *out = &c->tensors[op->out];
    if (a->type != T_INT8 || b->type != T_INT8 || out->type != T_INT8) {
        return ref_unsupported(err, op, "only int8 inputs and output");
    }
    uint32_t n = ref_elems(out);
    if (ref_elems(a) == n && ref_elems(b) == n) {
        p->broadcast = 0;
    } else if (ref_elems(a) == 1 && ref_elems(b) == n) {
        p->broadcast = 1;
    } else if (ref_elems(b) == 1 && ref_elems(a) == n) {
        p->broadcast = 2;
    } else {
        return ref_unsupported(err, op, "broadcasting other than a single value");
    }
    if (a->scale <= 0.0f || b->scale <= 0.0f || out->scale <= 0.0f) {
        return ref_invalid(err, "ADD tensors need quantization scales");
    }
    if (ref_activation_range(act, out, &p->act_min, &p->act_max)) {
        return ref_unsupported(err, op, "fused activation other than NONE/RELU/RELU6/RELU_N1_TO_1");
    }
    p->left_shift = 20;
    double twice_max = 2.0 * (double)(a->scale > b->scale ? a->scale : b->scale);
    q_quantize_multiplier((double)a->scale / twice_max, &p->in1_mult, &p->in1_shift);
    q_quantize_multiplier((double)b->scale / twice_max, &p->in2_mult, &p->in2_shift);
    q_quantize_multiplier(twice_max / ((double)(1 << p->left_shift) * (double)out->scale), &p->out_mult,
                          &p->out_shift);
    if (p->in1_shift > 0 || p->in2_shift > 0 || p->out_shift > 0) {
        return ref_unsupported(err, op, "scales give a multiplier above one");
    }
    op->eval = eval_add;
    return 0;
}

static void eval_reshape(const ref_op *op, ref_tensor *t)
{
    if (t[op->out].data != t[op->in[0]].data) {
        memmove(t[op->out].data, t[op->in[0]].data, t[op->out].bytes);
    }
}

int ref_prepare_reshape(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err)
{
    (void)opt;
    (void)has_opt;
    const ref_tensor *in = &c->tensors[op->in[0]], *out = &c->tensors[op->out];
    if (in->bytes != out->bytes || in->type != out->type) {
        return ref_invalid(err, "RESHAPE changes the number of bytes or the type");
    }
    op->eval = eval_reshape;
    return 0;
}

static void eval_quantize_float(const ref_op *op, ref_tensor *t)
{
    const ref_tensor *in = &t[op->in[0]], *out = &t[op->out];
    uint32_t n = ref_elems(out);
    for (uint32_t i = 0; i < n; ++i) {
        float v;
        memcpy(&v, in->data + 4u * i, sizeof v);
        int32_t q = (int32_t)((uint32_t)q_round_sat(v / out->scale) + (uint32_t)out->zero_point);
        ((int8_t *)out->data)[i] = (int8_t)clamp(q, -128, 127);
    }
}

static void eval_requantize(const ref_op *op, ref_tensor *t)
{
    const ref_tensor *in = &t[op->in[0]], *out = &t[op->out];
    uint32_t n = ref_elems(out);
    for (uint32_t i = 0; i < n; ++i) {
        int32_t v = ((const int8_t *)in->data)[i] - in->zero_point;
        int32_t q = (int32_t)((uint32_t)q_mul(v, op->p.quant.mult, op->p.quant.shift) + (uint32_t)out->zero_point);
        ((int8_t *)out->data)[i] = (int8_t)clamp(q, -128, 127);
    }
}

int ref_prepare_quantize(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err)
{
    (void)opt;
    (void)has_opt;
    const ref_tensor *in = &c->tensors[op->in[0]], *out = &c->tensors[op->out];
    if (out->type != T_INT8 || (in->type != T_FLOAT32 && in->type != T_INT8) || ref_elems(in) != ref_elems(out)) {
        return ref_unsupported(err, op, "only float32 or int8 to int8 of the same shape");
    }
    if (out->scale <= 0.0f || (in->type == T_INT8 && in->scale <= 0.0f)) {
        return ref_invalid(err, "QUANTIZE tensors need quantization scales");
    }
    if (in->type == T_FLOAT32) {
        op->eval = eval_quantize_float;
        return 0;
    }
    int shift;
    q_quantize_multiplier((double)in->scale / (double)out->scale, &op->p.quant.mult, &shift);
    op->p.quant.shift = shift;
    op->eval = eval_requantize;
    return 0;
}

static void eval_dequantize(const ref_op *op, ref_tensor *t)
{
    const ref_tensor *in = &t[op->in[0]], *out = &t[op->out];
    uint32_t n = ref_elems(out);
    for (uint32_t i = 0; i < n; ++i) {
        float v = (float)((double)in->scale * (double)(((const int8_t *)in->data)[i] - in->zero_point));
        memcpy(out->data + 4u * i, &v, sizeof v);
    }
}

int ref_prepare_dequantize(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err)
{
    (void)opt;
    (void)has_opt;
    const ref_tensor *in = &c->tensors[op->in[0]], *out = &c->tensors[op->out];
    if (in->type != T_INT8 || out->type != T_FLOAT32 || ref_elems(in) != ref_elems(out)) {
        return ref_unsupported(err, op, "only int8 to float32 of the same shape");
    }
    op->eval = eval_dequantize;
    return 0;
}
