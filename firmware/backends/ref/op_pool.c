/* MAX_POOL_2D and AVERAGE_POOL_2D on int8, as TFLM's reference_integer_ops: windows are clipped to
 * the image (padding never counts), the average rounds half away from zero. */
#include "bench/status.h"
#include "ref.h"

typedef struct {
    int y0, y1, x0, x1; /* clipped window, input coordinates [y0, y1) x [x0, x1) */
} window;

static window clip(const ref_conv_params *p, int oy, int ox, int ih, int iw)
{
    window w;
    int ys = oy * p->stride_h - p->pad_h, xs = ox * p->stride_w - p->pad_w;
    w.y0 = ys < 0 ? 0 : ys;
    w.x0 = xs < 0 ? 0 : xs;
    w.y1 = ys + p->filter_h < ih ? ys + p->filter_h : ih;
    w.x1 = xs + p->filter_w < iw ? xs + p->filter_w : iw;
    return w;
}

static void eval_pool(const ref_op *op, ref_tensor *t)
{
    const ref_conv_params *p = &op->p.conv;
    const ref_tensor *in = &t[op->in[0]], *out = &t[op->out];
    const int batches = in->dims[0], ih = in->dims[1], iw = in->dims[2], ch = in->dims[3];
    const int oh = out->dims[1], ow = out->dims[2];
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int is_max = op->code == OP_MAX_POOL_2D;
    for (int b = 0; b < batches; ++b) {
        for (int oy = 0; oy < oh; ++oy) {
            for (int ox = 0; ox < ow; ++ox) {
                window w = clip(p, oy, ox, ih, iw);
                for (int c = 0; c < ch; ++c) {
                    int32_t acc = is_max ? -128 : 0;
                    int32_t count = 0;
                    for (int iy = w.y0; iy < w.y1; ++iy) {
                        for (int ix = w.x0; ix < w.x1; ++ix) {
                            int32_t v = x[((b * ih + iy) * iw + ix) * ch + c];
                            if (is_max) {
                                acc = v > acc ? v : acc;
                            } else {
                                acc += v;
                            }
                            ++count;
                        }
                    }
                    if (!is_max && count > 0) {
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    acc = acc < p->act_min ? p->act_min : acc;
                    acc = acc > p->act_max ? p->act_max : acc;
                    y[((b * oh + oy) * ow + ox) * ch + c] = (int8_t)acc;
                }
            }
        }
    }
}

int ref_prepare_pool(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err)
{
    ref_conv_params *p = &op->p.conv;
    uint8_t padding = 0, act = 0;
    int32_t sw = 1, sh = 1, fw = 1, fh = 1;
    if (!has_opt || fb_u8(&c->fb, opt, 0, 0, &padding) || fb_i32(&c->fb, opt, 1, 1, &sw) ||
        fb_i32(&c->fb, opt, 2, 1, &sh) || fb_i32(&c->fb, opt, 3, 1, &fw) || fb_i32(&c->fb, opt, 4, 1, &fh) ||
        fb_u8(&c->fb, opt, 5, 0, &act)) {
        return ref_invalid(err, "missing or damaged Pool2DOptions");
    }
    const ref_tensor *in = &c->tensors[op->in[0]], *out = &c->tensors[op->out];
    if (in->type != T_INT8 || out->type != T_INT8) {
        return ref_unsupported(err, op, "only int8 input and output");
    }
    if (in->ndims != 4 || out->ndims != 4 || sw <= 0 || sh <= 0 || fw <= 0 || fh <= 0 || padding > 1) {
        return ref_invalid(err, "pooling needs 4-D tensors and positive strides and window");
    }
    if (in->scale != out->scale || in->zero_point != out->zero_point) {
        return ref_unsupported(err, op, "input and output quantization differ");
    }
    p->stride_w = sw;
    p->stride_h = sh;
    p->filter_w = fw;
    p->filter_h = fh;
    int oh = ref_out_size(padding, in->dims[1], fh, sh, 1), ow = ref_out_size(padding, in->dims[2], fw, sw, 1);
    if (oh != out->dims[1] || ow != out->dims[2] || in->dims[3] != out->dims[3] || in->dims[0] != out->dims[0]) {
        return ref_invalid(err, "pooling output shape does not match its options");
    }
    p->pad_h = ref_padding(sh, 1, in->dims[1], fh, oh);
    p->pad_w = ref_padding(sw, 1, in->dims[2], fw, ow);
    if (ref_activation_range(act, out, &p->act_min, &p->act_max)) {
        return ref_unsupported(err, op, "fused activation other than NONE/RELU/RELU6/RELU_N1_TO_1");
    }
    op->eval = eval_pool;
    return 0;
}
