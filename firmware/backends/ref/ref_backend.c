/* The reference backend: reads a .tflite flatbuffer in place, prepares the operators it knows,
 * plans activations into the arena and runs the int8 kernels (bench/backend.h). */
#include <string.h>

#include "bench/backend.h"
#include "bench/status.h"
#include "ref.h"

typedef struct {
    uint16_t code;
    ref_prepare_fn prepare;
} op_entry;

/* The operator resolver: what this backend can run. */
static const op_entry resolver[] = {
    {OP_CONV_2D, ref_prepare_conv},       {OP_DEPTHWISE_CONV_2D, ref_prepare_dwconv},
    {OP_FULLY_CONNECTED, ref_prepare_fc}, {OP_AVERAGE_POOL_2D, ref_prepare_pool},
    {OP_MAX_POOL_2D, ref_prepare_pool},   {OP_ADD, ref_prepare_add},
    {OP_RESHAPE, ref_prepare_reshape},    {OP_SOFTMAX, ref_prepare_softmax},
    {OP_QUANTIZE, ref_prepare_quantize},  {OP_DEQUANTIZE, ref_prepare_dequantize},
};

static struct {
    int ready;
    fb_buf fb;
    ref_tensor tensors[REF_MAX_TENSORS];
    ref_op ops[REF_MAX_OPS];
    uint32_t n_tensors, n_ops, n_in, n_out;
    int16_t inputs[REF_MAX_IO], outputs[REF_MAX_IO];
} S;

const char *bench_backend_name(void)
{
    return "bench-ref";
}

const char *bench_backend_version(void)
{
#if REF_SINGLE_ROUNDING
    return "1 (int8, TFLM single rounding)";
#else
    return "1 (int8, TFLM double rounding)";
#endif
}

void bench_backend_reset(void)
{
    S.ready = 0;
    S.n_tensors = S.n_ops = S.n_in = S.n_out = 0;
}

static uint32_t type_size(uint8_t type)
{
    switch (type) {
    case T_FLOAT32:
    case T_INT32:
        return 4;
    case T_INT64:
        return 8;
    case T_INT16:
        return 2;
    default:
        return 1; /* int8, uint8, bool; other types are refused by the kernels that would use them */
    }
}

static int parse_tensor(uint32_t table, fb_vec *buffers, ref_tensor *t, bench_backend_error *err)
{
    const fb_buf *b = &S.fb;
    fb_vec shape;
    uint32_t buffer_index, q, bpos;
    int has_q;
    memset(t, 0, sizeof *t);
    if (fb_vector(b, table, 0, 4, &shape) || fb_u8(b, table, 1, 0, &t->type) || fb_field(b, table, 2, 4, &bpos) ||
        fb_table(b, table, 4, &q, &has_q)) {
        return ref_invalid(err, "damaged tensor");
    }
    buffer_index = bpos ? fb_ld_u32(b->data + bpos) : 0;
    if (shape.len > BENCH_MAX_DIMS) {
        return ref_invalid(err, "tensor with more than 6 dimensions");
    }
    t->ndims = (uint8_t)shape.len;
    uint64_t bytes = type_size(t->type);
    for (uint32_t i = 0; i < shape.len; ++i) {
        int32_t d = fb_ld_i32(b->data + shape.pos + 4 * i);
        if (d < 0) {
            return ref_invalid(err, "tensor with a dynamic or negative dimension");
        }
        t->dims[i] = d;
        bytes *= (uint64_t)d;
        if (bytes > 0x7FFFFFFFu) {
            return ref_invalid(err, "tensor larger than 2 GiB");
        }
    }
    t->bytes = (uint32_t)bytes;
    if (has_q) {
        fb_vec zps;
        if (fb_vector(b, q, 2, 4, &t->scales) || fb_vector(b, q, 3, 8, &zps)) {
            return ref_invalid(err, "damaged quantization parameters");
        }
        t->scale = t->scales.len ? fb_ld_f32(b->data + t->scales.pos) : 0.0f;
        int64_t zp = zps.len ? fb_ld_i64(b->data + zps.pos) : 0;
        /* A zero point outside the type's range is a broken model, and would overflow the kernels. */
        if (zp < (t->type == T_INT8 ? -128 : -65536) || zp > (t->type == T_INT8 ? 127 : 65535)) {
            return ref_invalid(err, "zero point out of range");
        }
        t->zero_point = (int32_t)zp;
    }
    if (buffer_index >= buffers->len) {
        return ref_invalid(err, "tensor refers to a missing buffer");
    }
    uint32_t buf_table;
    fb_vec data;
    uint64_t ext_offset = 0;
    if (fb_vec_table(b, buffers, buffer_index, &buf_table) || fb_vector(b, buf_table, 0, 1, &data) ||
        fb_u64(b, buf_table, 1, &ext_offset)) {
        return ref_invalid(err, "damaged buffer");
    }
    if (ext_offset > 1) {
        return ref_invalid(err, "buffers outside the flatbuffer (models over 2 GB) are not supported");
    }
    if (data.len > 0) {
        if (data.len < t->bytes) {
            return ref_invalid(err, "constant tensor shorter than its shape");
        }
        t->is_const = 1;
        t->data = (uint8_t *)(uintptr_t)(b->data + data.pos); /* read-only by contract */
    }
    t->first = 0x7FFFFFFF;
    t->last = -1;
    return 0;
}

/* Builtin code of an operator code table; custom operators report their name. */
static int op_code(uint32_t table, uint16_t *code, char *custom, uint32_t custom_size)
{
    const fb_buf *b = &S.fb;
    uint8_t deprecated = 0;
    int32_t builtin = 0;
    fb_vec name;
    custom[0] = 0;
    if (fb_u8(b, table, 0, 0, &deprecated) || fb_i32(b, table, 3, 0, &builtin) || fb_vector(b, table, 1, 1, &name)) {
        return -1;
    }
    /* Schemas before v3a kept the code in the (int8) deprecated field only: take the larger. */
    int32_t c = (int8_t)deprecated > builtin ? (int8_t)deprecated : builtin;
    if (c < 0 || c > 0xFFFF) {
        return -1;
    }
    *code = (uint16_t)c;
    if (name.len) {
        uint32_t n = name.len < custom_size - 1 ? name.len : custom_size - 1;
        memcpy(custom, b->data + name.pos, n);
        custom[n] = 0;
    }
    return 0;
}

static int read_index_list(const fb_vec *v, int16_t *out, uint32_t max, uint32_t *n, int allow_absent)
{
    if (v->len > max) {
        return -1;
    }
    for (uint32_t i = 0; i < v->len; ++i) {
        int32_t k = fb_ld_i32(S.fb.data + v->pos + 4 * i);
        if (k < (allow_absent ? -1 : 0) || k >= (int32_t)S.n_tensors) {
            return -1;
        }
        out[i] = (int16_t)k;
    }
    *n = v->len;
    return 0;
}

static int parse_op(uint32_t index, uint32_t table, const fb_vec *opcodes, ref_ctx *ctx, bench_backend_error *err)
{
    const fb_buf *b = &S.fb;
    ref_op *op = &S.ops[index];
    uint32_t opcode_index = 0, opt = 0, n_out = 0, n_in = 0, pos;
    fb_vec ins, outs;
    int has_opt = 0;
    char custom[40];
    memset(op, 0, sizeof *op);
    if (fb_field(b, table, 0, 4, &pos) || fb_vector(b, table, 1, 4, &ins) || fb_vector(b, table, 2, 4, &outs) ||
        fb_table(b, table, 4, &opt, &has_opt)) {
        return ref_invalid(err, "damaged operator");
    }
    opcode_index = pos ? fb_ld_u32(b->data + pos) : 0;
    uint32_t code_table;
    if (fb_vec_table(b, opcodes, opcode_index, &code_table) ||
        op_code(code_table, &op->code, custom, sizeof custom)) {
        return ref_invalid(err, "operator with a damaged or missing operator code");
    }
    const op_entry *entry = NULL;
    for (uint32_t i = 0; i < sizeof resolver / sizeof resolver[0]; ++i) {
        if (resolver[i].code == op->code) {
            entry = &resolver[i];
        }
    }
    err->op_index = (uint16_t)index;
    if (entry == NULL) {
        ref_unsupported(err, op, "not in this firmware's operator resolver");
        if (op->code == 32 && custom[0]) { /* CUSTOM: the protocol names it by its custom code */
            err->op_name[0] = err->message[0] = 0;
            ref_cat(err->op_name, sizeof err->op_name, custom);
            ref_cat(err->message, sizeof err->message, "custom operator not supported: ");
            ref_cat(err->message, sizeof err->message, custom);
        }
        return -1;
    }
    int16_t in_idx[3] = {-1, -1, -1}, out_idx[1] = {-1};
    if (read_index_list(&ins, in_idx, 3, &n_in, 1) || read_index_list(&outs, out_idx, 1, &n_out, 0) ||
        n_in < 1 || in_idx[0] < 0 || n_out != 1) {
        return ref_invalid(err, "operator with a bad number of inputs or outputs");
    }
    op->n_in = (uint8_t)n_in;
    memcpy(op->in, in_idx, sizeof op->in);
    op->out = out_idx[0];
    for (uint32_t i = 0; i < n_in; ++i) {
        if (in_idx[i] >= 0) {
            ref_tensor *t = &S.tensors[in_idx[i]];
            t->used = 1;
            t->last = (int32_t)index > t->last ? (int32_t)index : t->last;
        }
    }
    ref_tensor *o = &S.tensors[op->out];
    if (o->is_const) {
        return ref_invalid(err, "operator writes a constant tensor");
    }
    o->used = 1;
    o->first = (int32_t)index < o->first ? (int32_t)index : o->first;
    o->last = o->last < o->first ? o->first : o->last;
    return entry->prepare(ctx, op, opt, has_opt, err);
}

static int parse_io(uint32_t subgraph, unsigned field, int16_t *list, uint32_t *n, bench_backend_error *err)
{
    fb_vec v;
    if (fb_vector(&S.fb, subgraph, field, 4, &v) || read_index_list(&v, list, REF_MAX_IO, n, 0)) {
        return ref_invalid(err, "damaged or too many graph inputs/outputs");
    }
    return 0;
}

int bench_backend_allocate(const uint8_t *model, uint32_t size, uint8_t *arena, uint32_t capacity, uint32_t *used,
                           bench_backend_error *err)
{
    memset(err, 0, sizeof *err);
    bench_backend_reset();
    S.fb.data = model;
    S.fb.size = size;
    const fb_buf *b = &S.fb;
    uint32_t root, subgraph, version;
    fb_vec opcodes, subgraphs, buffers, tensors, ops;
    uint32_t vpos;
    if (fb_root(b, &root) || fb_field(b, root, 0, 4, &vpos) || fb_vector(b, root, 1, 4, &opcodes) ||
        fb_vector(b, root, 2, 4, &subgraphs) || fb_vector(b, root, 4, 4, &buffers)) {
        return ref_invalid(err, "not a TFLite flatbuffer");
    }
    version = vpos ? fb_ld_u32(b->data + vpos) : 0;
    if (version != 3) {
        return ref_invalid(err, "TFLite schema version is not 3");
    }
    if (fb_vec_table(b, &subgraphs, 0, &subgraph) || fb_vector(b, subgraph, 0, 4, &tensors) ||
        fb_vector(b, subgraph, 3, 4, &ops)) {
        return ref_invalid(err, "model has no readable subgraph");
    }
    if (tensors.len > REF_MAX_TENSORS || ops.len > REF_MAX_OPS) {
        ref_invalid(err, "tensors/operators beyond this firmware's limits: ");
        ref_cat_u32(err->message, sizeof err->message, tensors.len);
        ref_cat(err->message, sizeof err->message, "/");
        ref_cat_u32(err->message, sizeof err->message, ops.len);
        return -1;
    }
    S.n_tensors = tensors.len;
    for (uint32_t i = 0; i < tensors.len; ++i) {
        uint32_t t;
        if (fb_vec_table(b, &tensors, i, &t) || parse_tensor(t, &buffers, &S.tensors[i], err)) {
            return err->status ? -1 : ref_invalid(err, "damaged tensor table");
        }
    }
    if (parse_io(subgraph, 1, S.inputs, &S.n_in, err) || parse_io(subgraph, 2, S.outputs, &S.n_out, err)) {
        return -1;
    }
    for (uint32_t i = 0; i < S.n_in; ++i) {
        ref_tensor *t = &S.tensors[S.inputs[i]];
        if (t->is_const) {
            return ref_invalid(err, "a graph input is a constant");
        }
        t->used = 1;
        t->first = -1;
        t->last = t->last < 0 ? 0 : t->last;
    }
    ref_ctx ctx = {*b, S.tensors, S.n_tensors, arena, capacity, 0};
    S.n_ops = ops.len;
    for (uint32_t i = 0; i < ops.len; ++i) {
        uint32_t t;
        if (fb_vec_table(b, &ops, i, &t)) {
            return ref_invalid(err, "damaged operator table");
        }
        if (parse_op(i, t, &opcodes, &ctx, err)) {
            if (err->status == BENCH_E_UNSUPPORTED_OP) {
                err->op_index = (uint16_t)i;
            }
            return -1;
        }
    }
    for (uint32_t i = 0; i < S.n_in; ++i) {
        /* Inputs stay untouched for the whole inference: INVOKE(n) runs n times on what SET_INPUT
         * wrote (TFLM would let later tensors reuse the input's bytes). */
        S.tensors[S.inputs[i]].last = (int32_t)S.n_ops;
    }
    for (uint32_t i = 0; i < S.n_out; ++i) {
        ref_tensor *t = &S.tensors[S.outputs[i]];
        t->used = 1;
        t->last = (int32_t)S.n_ops;
        t->first = t->first > (int32_t)S.n_ops ? (int32_t)S.n_ops : t->first;
    }
    for (uint32_t i = 0; i < S.n_tensors; ++i) {
        ref_tensor *t = &S.tensors[i];
        if (t->used && !t->is_const && t->first > t->last) {
            t->first = -1; /* read but never written: keep it alive from the start */
        }
    }
    uint32_t plan = ref_plan(S.tensors, S.n_tensors);
    uint64_t need = (uint64_t)plan + ctx.persistent;
    if (need > capacity) {
        err->status = BENCH_E_ARENA_TOO_SMALL;
        err->required = need > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)need;
        err->message[0] = 0;
        ref_cat(err->message, sizeof err->message, "the model needs ");
        ref_cat_u32(err->message, sizeof err->message, err->required);
        ref_cat(err->message, sizeof err->message, " arena bytes, ");
        ref_cat_u32(err->message, sizeof err->message, capacity);
        ref_cat(err->message, sizeof err->message, " available");
        return -1;
    }
    for (uint32_t i = 0; i < S.n_tensors; ++i) {
        ref_tensor *t = &S.tensors[i];
        if (t->used && !t->is_const) {
            t->data = arena + t->offset;
        }
    }
    /* Inputs start at zero, so an INVOKE before SET_INPUT is deterministic. */
    for (uint32_t i = 0; i < S.n_in; ++i) {
        memset(S.tensors[S.inputs[i]].data, 0, S.tensors[S.inputs[i]].bytes);
    }
    *used = (uint32_t)need;
    S.ready = 1;
    return 0;
}

uint32_t bench_backend_tensor_count(int output)
{
    return S.ready ? (output ? S.n_out : S.n_in) : 0;
}

static ref_tensor *io_tensor(int output, uint32_t index)
{
    if (!S.ready || index >= (output ? S.n_out : S.n_in)) {
        return NULL;
    }
    return &S.tensors[output ? S.outputs[index] : S.inputs[index]];
}

int bench_backend_tensor_desc(int output, uint32_t index, bench_tensor_desc *d)
{
    const ref_tensor *t = io_tensor(output, index);
    if (t == NULL) {
        return -1;
    }
    memset(d, 0, sizeof *d);
    d->type = t->type;
    d->ndims = t->ndims;
    for (unsigned i = 0; i < t->ndims; ++i) {
        d->dims[i] = (uint32_t)t->dims[i];
    }
    d->bytes = t->bytes;
    d->scale = t->scale;
    d->zero_point = t->zero_point;
    return 0;
}

uint8_t *bench_backend_tensor_data(int output, uint32_t index)
{
    ref_tensor *t = io_tensor(output, index);
    return t ? t->data : NULL;
}

uint32_t bench_backend_op_count(void)
{
    return S.ready ? S.n_ops : 0;
}

uint16_t bench_backend_op_code(uint32_t op_index)
{
    return op_index < S.n_ops ? S.ops[op_index].code : 0;
}

int bench_backend_invoke(const bench_op_hooks *hooks, bench_backend_error *err)
{
    if (!S.ready) {
        err->status = BENCH_E_STATE;
        return -1;
    }
    for (uint32_t i = 0; i < S.n_ops; ++i) {
        if (hooks && hooks->op_begin) {
            hooks->op_begin(hooks->ctx, i);
        }
        S.ops[i].eval(&S.ops[i], S.tensors);
        if (hooks && hooks->op_end) {
            hooks->op_end(hooks->ctx, i);
        }
    }
    return 0;
}
