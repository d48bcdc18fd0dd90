/* Helpers shared by the reference kernels' prepare functions. */
#include <string.h>

#include "bench/status.h"
#include "qmath.h"
#include "ref.h"

void *ref_persistent(ref_ctx *c, uint32_t bytes)
{
    uint32_t need = (bytes + REF_ALIGN - 1u) & ~(REF_ALIGN - 1u);
    c->persistent += need;
    if (c->persistent > c->capacity) {
        return NULL;
    }
    return c->arena + (c->capacity - c->persistent);
}

uint32_t ref_elems(const ref_tensor *t)
{
    uint32_t n = 1;
    for (unsigned i = 0; i < t->ndims; ++i) {
        n *= (uint32_t)t->dims[i];
    }
    return n;
}

int ref_activation_range(int activation, const ref_tensor *out, int32_t *lo, int32_t *hi)
{
    const float scale = out->scale;
    const int32_t zp = out->zero_point;
    if (!(scale > 0.0f)) {
        return -1;
    }
    int32_t q0 = zp + q_round_sat(0.0f / scale);
    *lo = -128;
    *hi = 127;
    switch (activation) {
    case 0: /* NONE */
        return 0;
    case 1: /* RELU */
        *lo = q0 > -128 ? q0 : -128;
        return 0;
    case 3: { /* RELU6 */
        int32_t q6 = (int32_t)((uint32_t)zp + (uint32_t)q_round_sat(6.0f / scale));
        *lo = q0 > -128 ? q0 : -128;
        *hi = q6 < 127 ? q6 : 127;
        return 0;
    }
    case 2: { /* RELU_N1_TO_1 */
        int32_t qm = (int32_t)((uint32_t)zp + (uint32_t)q_round_sat(-1.0f / scale));
        int32_t qp = (int32_t)((uint32_t)zp + (uint32_t)q_round_sat(1.0f / scale));
        *lo = qm > -128 ? qm : -128;
        *hi = qp < 127 ? qp : 127;
        return 0;
    }
    default:
        return -1;
    }
}

int ref_out_size(int padding, int in, int filter, int stride, int dilation)
{
    /* 64-bit: options come from the model and may be absurd; the caller compares with the shapes. */
    int64_t effective = ((int64_t)filter - 1) * dilation + 1;
    int64_t out;
    if (stride <= 0) {
        return -1;
    }
    out = padding == 0 ? ((int64_t)in + stride - 1) / stride : ((int64_t)in + stride - effective) / stride;
    return out < 0 || out > 0x7FFFFFFF ? -1 : (int)out;
}

int ref_padding(int stride, int dilation, int in, int filter, int out)
{
    int64_t effective = ((int64_t)filter - 1) * dilation + 1;
    int64_t total = ((int64_t)out - 1) * stride + effective - in;
    return total > 0 ? (int)(total / 2) : 0;
}

float ref_scale(const ref_tensor *t, const fb_buf *fb, uint32_t i)
{
    if (i >= t->scales.len) {
        return t->scale;
    }
    return fb_ld_f32(fb->data + t->scales.pos + 4u * i);
}

int ref_unsupported(bench_backend_error *err, const ref_op *op, const char *why)
{
    err->status = BENCH_E_UNSUPPORTED_OP;
    err->builtin_code = op->code;
    err->op_name[0] = err->message[0] = 0;
    ref_cat(err->op_name, sizeof err->op_name, ref_op_name(op->code));
    ref_cat(err->message, sizeof err->message, err->op_name);
    ref_cat(err->message, sizeof err->message, ": ");
    ref_cat(err->message, sizeof err->message, why);
    return -1;
}

int ref_invalid(bench_backend_error *err, const char *why)
{
    err->status = BENCH_E_MODEL_INVALID;
    err->message[0] = 0;
    ref_cat(err->message, sizeof err->message, why);
    return -1;
}

void ref_cat(char *dst, uint32_t cap, const char *s)
{
    uint32_t n = (uint32_t)strlen(dst);
    while (*s && n + 1 < cap) {
        dst[n++] = *s++;
    }
    dst[n] = 0;
}

void ref_cat_u32(char *dst, uint32_t cap, uint32_t v)
{
    char digits[11];
    int i = 10;
    digits[i] = 0;
    do {
        digits[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    ref_cat(dst, cap, digits + i);
}
