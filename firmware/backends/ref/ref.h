/* Internal types of the reference backend: tensors and operators as read from the model. */
#ifndef REF_H
#define REF_H

#include <stddef.h>
#include <stdint.h>

#include "bench/backend.h"
#include "fb.h"

/* Records live in static arrays (not in the arena) so the bytes a model needs can always be
 * computed, even when the arena is far too small. */
#ifndef REF_MAX_TENSORS
#define REF_MAX_TENSORS 256
#endif
#ifndef REF_MAX_OPS
#define REF_MAX_OPS 160
#endif
#ifndef REF_MAX_IO
#define REF_MAX_IO 8
#endif
#define REF_ALIGN 16u

/* TFLite TensorType values used here. */
enum { T_FLOAT32 = 0, T_INT32 = 2, T_UINT8 = 3, T_INT64 = 4, T_INT16 = 7, T_INT8 = 9 };
/* TFLite BuiltinOperator values handled here. */
enum {
    OP_ADD = 0, OP_AVERAGE_POOL_2D = 1, OP_CONV_2D = 3, OP_DEPTHWISE_CONV_2D = 4, OP_DEQUANTIZE = 6,
    OP_FULLY_CONNECTED = 9, OP_MAX_POOL_2D = 17, OP_RESHAPE = 22, OP_SOFTMAX = 25, OP_QUANTIZE = 114
};

typedef struct {
    uint8_t *data;        /* constant: inside the model; else inside the arena once planned */
    uint32_t bytes;
    int32_t dims[BENCH_MAX_DIMS];
    uint8_t ndims;
    uint8_t type;
    uint8_t is_const;
    uint8_t used;         /* read or written by the graph: needs arena space unless constant */
    float scale;          /* first scale (0: not quantized) */
    int32_t zero_point;
    fb_vec scales;        /* all scales (f32 little-endian, inside the model) */
    int32_t first, last;  /* lifetime: first writing op (-1: graph input) .. last reading op */
    uint32_t offset;      /* in the arena, when planned */
} ref_tensor;

struct ref_op;
typedef void (*ref_eval_fn)(const struct ref_op *op, ref_tensor *t);

typedef struct {
    int stride_w, stride_h, dil_w, dil_h, pad_w, pad_h, depth_mult, filter_w, filter_h;
    int32_t act_min, act_max;
    int32_t *mult;        /* per output channel, in the arena */
    int32_t *shift;
} ref_conv_params;

typedef struct {
    int32_t act_min, act_max;
    int32_t mult, shift;  /* per-tensor */
    int32_t *pc_mult;     /* per-channel (NULL: per-tensor) */
    int32_t *pc_shift;
} ref_fc_params;

typedef struct {
    int32_t in_mult, diff_min;
    int in_left_shift;
} ref_softmax_params;

typedef struct {
    int32_t in1_mult, in2_mult, out_mult;
    int in1_shift, in2_shift, out_shift, left_shift;
    int32_t act_min, act_max;
    uint8_t broadcast;    /* 0: same shape; 1: input 1 is a single value; 2: input 2 is */
} ref_add_params;

typedef struct {
    int32_t mult, shift;  /* int8 -> int8 requantisation */
} ref_quant_params;

typedef struct ref_op {
    uint16_t code;
    uint8_t n_in;
    int16_t in[3];        /* tensor indices, -1 when an optional input is absent */
    int16_t out;
    ref_eval_fn eval;
    union {
        ref_conv_params conv;
        ref_fc_params fc;
        ref_softmax_params softmax;
        ref_add_params add;
        ref_quant_params quant;
    } p;
} ref_op;

/* What preparing an operator needs: the model, the tensors, and persistent arena space. */
typedef struct {
    fb_buf fb;
    ref_tensor *tensors;
    uint32_t n_tensors;
    uint8_t *arena;
    uint32_t capacity;
    uint32_t persistent;  /* bytes taken from the top of the arena (counted even when they overflow) */
} ref_ctx;

/* Persistent arena bytes from the top; NULL (but counted) when they do not fit. */
void *ref_persistent(ref_ctx *c, uint32_t bytes);

/* Elements of a tensor (product of dims). */
uint32_t ref_elems(const ref_tensor *t);
/* The activation range of a fused activation for an int8 output (TFLM's CalculateActivationRangeQuantized). */
int ref_activation_range(int activation, const ref_tensor *out, int32_t *lo, int32_t *hi);
/* Output size and padding (TFLM's ComputeOutSize / ComputePaddingWithOffset). */
int ref_out_size(int padding, int in, int filter, int stride, int dilation);
int ref_padding(int stride, int dilation, int in, int filter, int out);
/* Scale i of a tensor's per-channel quantization. */
float ref_scale(const ref_tensor *t, const fb_buf *fb, uint32_t i);

/* Per-operator preparation: check types and shapes, compute parameters, set op->eval.
 * Return 0, or -1 with err filled (E_UNSUPPORTED_OP for types/options the kernels lack). */
typedef int (*ref_prepare_fn)(ref_ctx *c, ref_op *op, uint32_t options_table, int has_options,
                              bench_backend_error *err);
int ref_prepare_conv(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err);
int ref_prepare_dwconv(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err);
int ref_prepare_fc(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err);
int ref_prepare_pool(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err);
int ref_prepare_softmax(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err);
int ref_prepare_add(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err);
int ref_prepare_reshape(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err);
int ref_prepare_quantize(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err);
int ref_prepare_dequantize(ref_ctx *c, ref_op *op, uint32_t opt, int has_opt, bench_backend_error *err);

/* Fill err for an operator the kernels cannot run (name from the builtin code). */
int ref_unsupported(bench_backend_error *err, const ref_op *op, const char *why);
int ref_invalid(bench_backend_error *err, const char *why);
const char *ref_op_name(uint32_t code);
/* Bounded string building for messages (no stdio: snprintf costs ~10 KB of flash on small parts). */
void ref_cat(char *dst, uint32_t cap, const char *s);
void ref_cat_u32(char *dst, uint32_t cap, uint32_t v);

/* Placement of the non-constant tensors in the arena: returns the bytes needed. */
uint32_t ref_plan(ref_tensor *t, uint32_t n);

#endif
