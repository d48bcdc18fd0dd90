/* FULLY_CONNECTED, int8 x int8 weights (per-tensor or per-channel) + int32 bias, as TFLM's
 * reference_integer_ops::FullyConnected(PerChannel): acc = sum((w - w_zp) * (x - x_zp)) + bias. */
#include "bench/status.h"
#include "qmath.h"
#include "ref.h"

static void eval_fc(const ref_op *op, ref_tensor *t)
{
    const ref_fc_params *p = &op->p.fc;
    const ref_tensor *in = &t[op->in[0]], *w = &t[op->in[1]], *out = &t[op->out];
    const int depth = w->dims[w->ndims - 1];
    const int units = out->dims[out->ndims - 1];
    const int batches = (int)(ref_elems(out) / (uint32_t)units);
    const int32_t in_off = -in->zero_point, w_off = -w->zero_point;
    const int8_t *x = (const int8_t *)in->data;
    const int8_t *wt = (const int8_t *)w->data;
    const uint8_t *bias = op->in[2] >= 0 ? t[op->in[2]].data : NULL;
    int8_t *y = (int8_t *)out->data;
    for (int b = 0; b < batches; ++b) {
        const int8_t *xb = x + b * depth;
        for (int u = 0; u < units; ++u) {
            const int8_t *wu = wt + u * depth;
            int32_t acc = 0;
            for (int d = 0; d < depth; ++d) {
                acc += ((int32_t)wu[d] + w_off) * ((int32_t)xb[d] + in_off);
            }
            if (bias) {
                acc = (int32_t)((uint32_t)acc + fb_ld_u32(bias + 4 * u)); /* wraps, never UB */
            }
            acc = p->pc_mult ? q_mul(acc, p->pc_mult[u], p->pc_shift[u]) : q_mul(acc, p->mult, p->shift);
            acc = (int32_t)((uint32_t)acc + (uint32_t)out->zero_point);
            acc = acc < p->act_min ? p->act_min : acc;
            acc = acc > p->act_max ? p->act_max : acc;
            y[b * units + u] = (int8_t)acc;
        }
    }
}

int ref_prepare_fc(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err)
{
    ref_fc_params *p = &op->p.fc;
    uint8_t act = 0, format = 0;
    if (has_opt && (fb_u8(&c->fb, opt, 0, 0, &act) || fb_u8(&c->fb, opt, 1, 0, &format))) {
        return ref_invalid(err, "damaged FullyConnectedOptions");
    }
    if (op->n_in < 2) {
        return ref_invalid(err, "FULLY_CONNECTED needs input and weights");
    }
    const ref_tensor *in = &c->tensors[op->in[0]], *w = &c->tensors[op->in[1]], *out = &c->tensors[op->out];
    if (in->type != T_INT8 || w->type != T_INT8 || out->type != T_INT8) {
        return ref_unsupported(err, op, "only int8 input, weights and output");
    }
    if (format != 0) {
        return ref_unsupported(err, op, "shuffled weights format");
    }
    if (w->ndims != 2 || !w->is_const || out->ndims < 1) {
        return ref_invalid(err, "FULLY_CONNECTED needs constant 2-D weights");
    }
    const int depth = w->dims[1], units = w->dims[0];
    if (units != out->dims[out->ndims - 1] || depth <= 0 || ref_elems(in) % (uint32_t)depth != 0 ||
        ref_elems(in) / (uint32_t)depth != ref_elems(out) / (uint32_t)units) {
        return ref_invalid(err, "FULLY_CONNECTED shapes do not agree");
    }
    if (depth > 65536) {
        return ref_unsupported(err, op, "more than 65536 products per output");
    }
    if (op->in[2] >= 0) {
        const ref_tensor *b = &c->tensors[op->in[2]];
        if (b->type != T_INT32 || !b->is_const || ref_elems(b) != (uint32_t)units) {
            return ref_unsupported(err, op, "bias must be constant int32, one per unit");
        }
    }
    if (in->scale <= 0.0f || w->scale <= 0.0f || out->scale <= 0.0f) {
        return ref_invalid(err, "FULLY_CONNECTED tensors need quantization scales");
    }
    if (ref_activation_range(act, out, &p->act_min, &p->act_max)) {
        return ref_unsupported(err, op, "fused activation other than NONE/RELU/RELU6/RELU_N1_TO_1");
    }
    int shift;
    q_quantize_multiplier((double)in->scale * (double)w->scale / (double)out->scale, &p->mult, &shift);
    p->shift = shift;
    p->pc_mult = p->pc_shift = NULL;
    if (w->scales.len > 1) {
        if (w->scales.len != (uint32_t)units) {
            return ref_invalid(err, "FULLY_CONNECTED per-channel scales do not match the units");
        }
        p->pc_mult = ref_persistent(c, 4u * (uint32_t)units);
        p->pc_shift = ref_persistent(c, 4u * (uint32_t)units);
        for (int u = 0; p->pc_mult && p->pc_shift && u < units; ++u) {
            double eff = (double)in->scale * (double)ref_scale(w, &c->fb, (uint32_t)u) / (double)out->scale;
            q_quantize_multiplier(eff, &p->pc_mult[u], &shift);
            p->pc_shift[u] = shift;
        }
    }
    op->eval = eval_fc;
    return 0;
}
