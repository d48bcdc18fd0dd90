/* Helpers shared by the reference kernels' prepare functions. */
#include <stdio.h>
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
    int32_t q0 = zp + (int32_t)q_roundf(0.0f / scale);
    *lo = -128;
    *hi = 127;
    switch (activation) {
    case 0: /* NONE */
        return 0;
    case 1: /* RELU */
        *lo = q0 > -128 ? q0 : -128;
        return 0;
    case 3: { /* RELU6 */
        int32_t q6 = zp + (int32_t)q_roundf(6.0f / scale);
        *lo = q0 > -128 ? q0 : -128;
        *hi = q6 < 127 ? q6 : 127;
        return 0;
    }
    case 2: { /* RELU_N1_TO_1 */
        int32_t qm = zp + (int32_t)q_roundf(-1.0f / scale);
        int32_t qp = zp + (int32_t)q_roundf(1.0f / scale);
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
    int effective = (filter - 1) * dilation + 1;
    if (stride <= 0) {
        return 0;
    }
    return padding == 0 ? (in + stride - 1) / stride : (in + stride - effective) / stride;
}

int ref_padding(int stride, int dilation, int in, int filter, int out)
{
    int effective = (filter - 1) * dilation + 1;
    int total = (out - 1) * stride + effective - in;
    return total > 0 ? total / 2 : 0;
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
    snprintf(err->op_name, sizeof err->op_name, "%s", ref_op_name(op->code));
    snprintf(err->message, sizeof err->message, "%s: %s", err->op_name, why);
    return -1;
}

int ref_invalid(bench_backend_error *err, const char *why)
{
    err->status = BENCH_E_MODEL_INVALID;
    snprintf(err->message, sizeof err->message, "%s", why);
    return -1;
}
