/* CONV_2D and DEPTHWISE_CONV_2D, int8 with per-channel (or per-tensor) int8 weights and int32 bias,
 * following TFLM's reference_integer_ops::ConvPerChannel / DepthwiseConvPerChannel arithmetic:
 * acc = sum(w * (x - x_zp)) + bias, requantised per output channel, + y_zp, clamped. */
#include "bench/status.h"
#include "qmath.h"
#include "ref.h"

/* Common checks and per-channel multipliers; `chan_dim` is the filter's output-channel axis. */
static int prepare_common(ref_ctx *c, ref_op *op, int chan_dim, int padding, int activation,
                          bench_backend_error *err)
{
    ref_conv_params *p = &op->p.conv;
    const ref_tensor *in = &c->tensors[op->in[0]];
    const ref_tensor *w = &c->tensors[op->in[1]];
    const ref_tensor *out = &c->tensors[op->out];
    if (in->type != T_INT8 || w->type != T_INT8 || out->type != T_INT8) {
        return ref_unsupported(err, op, "only int8 input, weights and output");
    }
    if (in->ndims != 4 || w->ndims != 4 || out->ndims != 4 || !w->is_const) {
        return ref_invalid(err, "convolution tensors must be 4-D with constant weights");
    }
    if (op->in[2] >= 0) {
        const ref_tensor *b = &c->tensors[op->in[2]];
        if (b->type != T_INT32 || !b->is_const || ref_elems(b) != (uint32_t)out->dims[3]) {
            return ref_unsupported(err, op, "bias must be constant int32, one per output channel");
        }
    }
    if (w->zero_point != 0) {
        return ref_unsupported(err, op, "weights must be symmetric (zero point 0)");
    }
    if (in->scale <= 0.0f || out->scale <= 0.0f || w->scale <= 0.0f) {
        return ref_invalid(err, "convolution tensors need quantization scales");
    }
    if (p->stride_w <= 0 || p->stride_h <= 0 || p->dil_w <= 0 || p->dil_h <= 0) {
        return ref_invalid(err, "strides and dilations must be positive");
    }
    if (padding != 0 && padding != 1) {
        return ref_invalid(err, "unknown padding");
    }
    if (ref_activation_range(activation, out, &p->act_min, &p->act_max)) {
        return ref_unsupported(err, op, "fused activation other than NONE/RELU/RELU6/RELU_N1_TO_1");
    }
    p->filter_h = w->dims[1];
    p->filter_w = w->dims[2];
    /* int8 x (int8 - zp) products summed in int32: at most 2^16 of them cannot overflow. */
    if ((uint64_t)w->dims[1] * (uint64_t)w->dims[2] * (uint64_t)(chan_dim == 0 ? w->dims[3] : 1) > 65536u) {
        return ref_unsupported(err, op, "more than 65536 products per output");
    }
    int oh = ref_out_size(padding, in->dims[1], p->filter_h, p->stride_h, p->dil_h);
    int ow = ref_out_size(padding, in->dims[2], p->filter_w, p->stride_w, p->dil_w);
    if (oh != out->dims[1] || ow != out->dims[2] || in->dims[0] != out->dims[0]) {
        return ref_invalid(err, "convolution output shape does not match its options");
    }
    p->pad_h = ref_padding(p->stride_h, p->dil_h, in->dims[1], p->filter_h, oh);
    p->pad_w = ref_padding(p->stride_w, p->dil_w, in->dims[2], p->filter_w, ow);
    uint32_t channels = (uint32_t)out->dims[3];
    if ((uint32_t)w->dims[chan_dim] != channels || (w->scales.len != 1 && w->scales.len != channels)) {
        return ref_invalid(err, "weights' channels or scales do not match the output");
    }
    p->mult = ref_persistent(c, 4u * channels);
    p->shift = ref_persistent(c, 4u * channels);
    if (p->mult && p->shift) {
        for (uint32_t i = 0; i < channels; ++i) {
            double eff = (double)in->scale * (double)ref_scale(w, &c->fb, w->scales.len > 1 ? i : 0) /
                         (double)out->scale;
            int shift;
            q_quantize_multiplier(eff, &p->mult[i], &shift);
            p->shift[i] = shift;
        }
    }
    return 0;
}

static inline int32_t bias_at(const ref_tensor *t, const ref_op *op, int oc)
{
    return op->in[2] >= 0 ? fb_ld_i32(t[op->in[2]].data + 4 * oc) : 0;
}

/* acc + bias wrapping like the two's-complement add TFLM compiles to, without C's overflow UB. */
static inline int32_t add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int8_t finish(const ref_conv_params *p, int32_t acc, int oc, int32_t out_zp)
{
    acc = add_wrap(q_mul(acc, p->mult[oc], p->shift[oc]), out_zp);
    acc = acc < p->act_min ? p->act_min : acc;
    acc = acc > p->act_max ? p->act_max : acc;
    return (int8_t)acc;
}

/* The filter taps [k0, k1) that land inside the input along one axis, for an output at `origin`. */
static inline void tap_range(int origin, int dil, int taps, int size, int *k0, int *k1)
{
    int lo = 0, hi = taps;
    while (lo < hi && origin + lo * dil < 0) {
        ++lo;
    }
    while (hi > lo && origin + (hi - 1) * dil >= size) {
        --hi;
    }
    *k0 = lo;
    *k1 = hi;
}

/* Loops are ordered so the bounds checks happen once per output pixel, not once per product:
 * the emulated instruction count (and a real MCU's cycles) is dominated by the innermost loop. */
static void eval_conv(const ref_op *op, ref_tensor *t)
{
    const ref_conv_params *p = &op->p.conv;
    const ref_tensor *in = &t[op->in[0]], *w = &t[op->in[1]], *out = &t[op->out];
    const int batches = in->dims[0], ih = in->dims[1], iw = in->dims[2], ic = in->dims[3];
    const int oh = out->dims[1], ow = out->dims[2], oc_n = out->dims[3];
    const int kh = p->filter_h, kw = p->filter_w, fic = w->dims[3];
    const int oc_per_group = oc_n / (ic / fic);
    const int32_t in_off = -in->zero_point, out_zp = out->zero_point;
    const int8_t *x = (const int8_t *)in->data;
    const int8_t *wt = (const int8_t *)w->data;
    int8_t *y = (int8_t *)out->data;
    for (int b = 0; b < batches; ++b) {
        for (int oy = 0; oy < oh; ++oy) {
            const int y0 = oy * p->stride_h - p->pad_h;
            int ky0, ky1;
            tap_range(y0, p->dil_h, kh, ih, &ky0, &ky1);
            for (int ox = 0; ox < ow; ++ox) {
                const int x0 = ox * p->stride_w - p->pad_w;
                int kx0, kx1;
                tap_range(x0, p->dil_w, kw, iw, &kx0, &kx1);
                int8_t *yp = y + ((b * oh + oy) * ow + ox) * oc_n;
                for (int oc = 0, g = 0, in_group = 0; oc < oc_n; ++oc) {
                    const int c0 = g * fic;
                    int32_t acc = 0;
                    for (int ky = ky0; ky < ky1; ++ky) {
                        const int8_t *xrow = x + ((b * ih + y0 + ky * p->dil_h) * iw) * ic + c0;
                        const int8_t *wrow = wt + ((oc * kh + ky) * kw) * fic;
                        for (int kx = kx0; kx < kx1; ++kx) {
                            const int8_t *xp = xrow + (x0 + kx * p->dil_w) * ic;
                            const int8_t *wp = wrow + kx * fic;
                            for (int k = 0; k < fic; ++k) {
                                acc += (int32_t)wp[k] * ((int32_t)xp[k] + in_off);
                            }
                        }
                    }
                    acc = add_wrap(acc, bias_at(t, op, oc));
                    yp[oc] = finish(p, acc, oc, out_zp);
                    if (++in_group == oc_per_group) { /* next group of output channels */
                        in_group = 0;
                        ++g;
                    }
                }
            }
        }
    }
}

static void eval_dwconv(const ref_op *op, ref_tensor *t)
{
    const ref_conv_params *p = &op->p.conv;
    const ref_tensor *in = &t[op->in[0]], *out = &t[op->out];
    const int batches = in->dims[0], ih = in->dims[1], iw = in->dims[2], ic = in->dims[3];
    const int oh = out->dims[1], ow = out->dims[2], oc_n = out->dims[3];
    const int kh = p->filter_h, kw = p->filter_w, mult = p->depth_mult;
    const int32_t in_off = -in->zero_point, out_zp = out->zero_point;
    const int8_t *x = (const int8_t *)in->data;
    const int8_t *wt = (const int8_t *)t[op->in[1]].data;
    int8_t *y = (int8_t *)out->data;
    for (int b = 0; b < batches; ++b) {
        for (int oy = 0; oy < oh; ++oy) {
            const int y0 = oy * p->stride_h - p->pad_h;
            int ky0, ky1;
            tap_range(y0, p->dil_h, kh, ih, &ky0, &ky1);
            for (int ox = 0; ox < ow; ++ox) {
                const int x0 = ox * p->stride_w - p->pad_w;
                int kx0, kx1;
                tap_range(x0, p->dil_w, kw, iw, &kx0, &kx1);
                int8_t *yp = y + ((b * oh + oy) * ow + ox) * oc_n;
                for (int c = 0, oc = 0; c < ic; ++c) {
                    for (int m = 0; m < mult; ++m, ++oc) {
                        int32_t acc = 0;
                        for (int ky = ky0; ky < ky1; ++ky) {
                            const int8_t *xrow = x + (b * ih + y0 + ky * p->dil_h) * iw * ic + c;
                            const int8_t *wrow = wt + ky * kw * oc_n + oc;
                            for (int kx = kx0; kx < kx1; ++kx) {
                                int32_t xv = xrow[(x0 + kx * p->dil_w) * ic];
                                acc += (int32_t)wrow[kx * oc_n] * (xv + in_off);
                            }
                        }
                        acc = add_wrap(acc, bias_at(t, op, oc));
                        yp[oc] = finish(p, acc, oc, out_zp);
                    }
                }
            }
        }
    }
}

int ref_prepare_conv(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err)
{
    ref_conv_params *p = &op->p.conv;
    uint8_t padding = 0, act = 0;
    int32_t sw = 1, sh = 1, dw = 1, dh = 1;
    if (has_opt && (fb_u8(&c->fb, opt, 0, 0, &padding) || fb_i32(&c->fb, opt, 1, 1, &sw) ||
                    fb_i32(&c->fb, opt, 2, 1, &sh) || fb_u8(&c->fb, opt, 3, 0, &act) ||
                    fb_i32(&c->fb, opt, 4, 1, &dw) || fb_i32(&c->fb, opt, 5, 1, &dh))) {
        return ref_invalid(err, "damaged Conv2DOptions");
    }
    p->stride_w = sw;
    p->stride_h = sh;
    p->dil_w = dw;
    p->dil_h = dh;
    p->depth_mult = 1;
    if (op->n_in < 2) {
        return ref_invalid(err, "CONV_2D needs input and weights");
    }
    if (prepare_common(c, op, 0, padding, act, err)) {
        return -1;
    }
    const ref_tensor *in = &c->tensors[op->in[0]], *w = &c->tensors[op->in[1]];
    if (w->dims[3] <= 0 || in->dims[3] % w->dims[3] != 0 || w->dims[0] % (in->dims[3] / w->dims[3]) != 0) {
        return ref_invalid(err, "CONV_2D input channels do not match the weights' groups");
    }
    op->eval = eval_conv;
    return 0;
}

int ref_prepare_dwconv(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err)
{
    ref_conv_params *p = &op->p.conv;
    uint8_t padding = 0, act = 0;
    int32_t sw = 1, sh = 1, dm = 1, dw = 1, dh = 1;
    if (has_opt && (fb_u8(&c->fb, opt, 0, 0, &padding) || fb_i32(&c->fb, opt, 1, 1, &sw) ||
                    fb_i32(&c->fb, opt, 2, 1, &sh) || fb_i32(&c->fb, opt, 3, 1, &dm) ||
                    fb_u8(&c->fb, opt, 4, 0, &act) || fb_i32(&c->fb, opt, 5, 1, &dw) ||
                    fb_i32(&c->fb, opt, 6, 1, &dh))) {
        return ref_invalid(err, "damaged DepthwiseConv2DOptions");
    }
    (void)dm; /* the multiplier follows from the shapes, as in TFLM's kernel */
    p->stride_w = sw;
    p->stride_h = sh;
    p->dil_w = dw;
    p->dil_h = dh;
    if (op->n_in < 2) {
        return ref_invalid(err, "DEPTHWISE_CONV_2D needs input and weights");
    }
    if (prepare_common(c, op, 3, padding, act, err)) {
        return -1;
    }
    const ref_tensor *in = &c->tensors[op->in[0]], *out = &c->tensors[op->out];
    if (in->dims[3] <= 0 || out->dims[3] % in->dims[3] != 0 || c->tensors[op->in[1]].dims[0] != 1) {
        return ref_invalid(err, "DEPTHWISE_CONV_2D channels are not a multiple of the input's");
    }
    p->depth_mult = out->dims[3] / in->dims[3];
    op->eval = eval_dwconv;
    return 0;
}
