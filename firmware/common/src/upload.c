/* Model upload (PROTOCOL.md §4.4) and ALLOCATE (§4.5). */
#include <string.h>

#include "bench/crc32.h"
#include "core.h"

/* Where a model of `size` bytes goes: its slot if it is held already (then *watermark = size), else
 * after the last slot, else at 0 with every slot forgotten. */
static uint32_t place(uint32_t size, uint32_t crc, uint32_t *watermark)
{
    uint32_t end = 0;
    for (uint32_t i = 0; i < C.n_slots; ++i) {
        if (C.slots[i].size == size && C.slots[i].crc == crc) {
            *watermark = size;
            return C.slots[i].offset;
        }
        uint32_t e = (C.slots[i].offset + C.slots[i].size + 15u) & ~15u;
        end = e > end ? e : end;
    }
    if (C.n_slots >= BENCH_MODEL_SLOTS || size > C.model_cap - end || end > C.model_cap) {
        C.n_slots = 0;
        end = 0;
    }
    return end;
}

static void remember(void)
{
    for (uint32_t i = 0; i < C.n_slots; ++i) {
        if (C.slots[i].offset == C.up_offset) {
            return;
        }
    }
    if (C.n_slots < BENCH_MODEL_SLOTS) {
        C.slots[C.n_slots].offset = C.up_offset;
        C.slots[C.n_slots].size = C.up_size;
        C.slots[C.n_slots].crc = C.up_crc;
        C.n_slots++;
    }
}

uint8_t cmd_upload_begin(const uint8_t *req, uint32_t len, bench_writer *w)
{
    if (len != 8) {
        return reply_error(w, BENCH_E_BAD_LENGTH, "UPLOAD_BEGIN takes 8 bytes");
    }
    uint32_t size = br_u32(req), crc = br_u32(req + 4);
    if (size > C.model_cap) {
        return reply_error_u32(w, BENCH_E_TOO_LARGE, C.model_cap, "model larger than the upload buffer");
    }
    if (size == 0) {
        return reply_error(w, BENCH_E_BAD_ARG, "empty model");
    }
    if (!(C.up_active && C.up_size == size && C.up_crc == crc)) {
        /* A different model: forget the old one's allocation before any byte is overwritten. */
        forget_allocation();
        C.up_active = 1;
        C.model_ok = 0;
        C.up_size = size;
        C.up_crc = crc;
        C.up_watermark = 0;
        C.up_offset = place(size, crc, &C.up_watermark);
    }
    bw_u32(w, C.up_watermark);
    bw_u16(w, (uint16_t)(BENCH_MAX_PAYLOAD - 4u));
    return BENCH_OK;
}

uint8_t cmd_upload_chunk(const uint8_t *req, uint32_t len, bench_writer *w)
{
    if (len < 4) {
        return reply_error(w, BENCH_E_BAD_LENGTH, "UPLOAD_CHUNK needs an offset");
    }
    if (!C.up_active) {
        return reply_error_u32(w, BENCH_E_STATE, 0, "no UPLOAD_BEGIN");
    }
    uint32_t offset = br_u32(req), n = len - 4u;
    if (n == 0) {
        return reply_error(w, BENCH_E_BAD_LENGTH, "empty chunk");
    }
    uint64_t end = (uint64_t)offset + n;
    if (end > C.up_size) {
        return reply_error(w, BENCH_E_BAD_ARG, "chunk ends beyond the model");
    }
    if (end <= C.up_watermark) {
        bw_u32(w, C.up_watermark); /* a duplicate: already held */
        return BENCH_OK;
    }
    if (offset != C.up_watermark) {
        return reply_error_u32(w, BENCH_E_SEQUENCE, C.up_watermark, "chunk not at the watermark");
    }
    memcpy(C.model + C.up_offset + offset, req + 4, n); /* up_offset + up_size <= model_cap by place() */
    C.up_watermark = (uint32_t)end;
    bw_u32(w, C.up_watermark);
    return BENCH_OK;
}

uint8_t cmd_upload_end(const uint8_t *req, uint32_t len, bench_writer *w)
{
    (void)req;
    if (len != 0) {
        return reply_error(w, BENCH_E_BAD_LENGTH, "UPLOAD_END takes no payload");
    }
    if (!C.up_active || C.up_watermark < C.up_size) {
        return reply_error_u32(w, BENCH_E_STATE, C.up_watermark, "upload incomplete");
    }
    uint32_t crc = bench_crc32(0, C.model + C.up_offset, C.up_size);
#if defined(BENCH_FUZZ)
    crc = C.up_crc; /* the fuzz build accepts any model so the fuzzer reaches the backend */
#endif
    if (crc != C.up_crc) {
        bw_u32(w, crc);
        bw_u32(w, C.up_crc);
        return reply_error(w, BENCH_E_CHECKSUM, "model CRC-32 mismatch");
    }
    C.model_ok = 1;
    remember();
    bw_u32(w, C.up_size);
    bw_u32(w, crc);
    return BENCH_OK;
}

static void tensor_desc(bench_writer *w, int output, uint32_t i)
{
    bench_tensor_desc d;
    if (bench_backend_tensor_desc(output, i, &d)) {
        memset(&d, 0, sizeof d);
    }
    bw_u8(w, d.type);
    bw_u8(w, d.ndims);
    for (unsigned k = 0; k < d.ndims && k < BENCH_MAX_DIMS; ++k) {
        bw_u32(w, d.dims[k]);
    }
    bw_u32(w, d.bytes);
    bw_f32(w, d.scale);
    bw_u32(w, (uint32_t)d.zero_point);
}

uint8_t cmd_allocate(const uint8_t *req, uint32_t len, bench_writer *w)
{
    if (len != 4) {
        return reply_error(w, BENCH_E_BAD_LENGTH, "ALLOCATE takes 4 bytes");
    }
    if (!C.model_ok) {
        return reply_error_u32(w, BENCH_E_STATE, 0, "no verified model");
    }
    uint32_t limit = br_u32(req);
    uint32_t capacity = (limit && limit < C.arena_cap) ? limit : C.arena_cap;
    bench_backend_error err;
    uint32_t used = 0;
    forget_allocation();
    maybe_busy(0);
    if (bench_backend_allocate(C.model + C.up_offset, C.up_size, C.arena, capacity, &used, &err)) {
        switch (err.status) {
        case BENCH_E_UNSUPPORTED_OP:
            bw_u16(w, err.builtin_code);
            bw_u16(w, err.op_index);
            bw_str(w, err.op_name, 64);
            return reply_error(w, BENCH_E_UNSUPPORTED_OP, err.message);
        case BENCH_E_ARENA_TOO_SMALL:
            bw_u32(w, err.required);
            bw_u32(w, capacity);
            return reply_error(w, BENCH_E_ARENA_TOO_SMALL, err.message);
        default:
            return reply_error(w, BENCH_E_MODEL_INVALID, err.message);
        }
    }
    uint32_t n_in = bench_backend_tensor_count(0), n_out = bench_backend_tensor_count(1);
    if (n_in > 255 || n_out > 255) {
        forget_allocation();
        return reply_error(w, BENCH_E_MODEL_INVALID, "more than 255 inputs or outputs");
    }
    C.allocated = 1;
    C.arena_used = used;
    C.arena_limit = capacity;
    bw_u32(w, used);
    bw_u32(w, capacity);
    bw_u8(w, (uint8_t)n_in);
    bw_u8(w, (uint8_t)n_out);
    for (uint32_t i = 0; i < n_in; ++i) {
        tensor_desc(w, 0, i);
    }
    for (uint32_t i = 0; i < n_out; ++i) {
        tensor_desc(w, 1, i);
    }
    if (w->overflow) {
        w->len = 0;
        w->overflow = 0;
        forget_allocation();
        return reply_error(w, BENCH_E_MODEL_INVALID, "tensor descriptions do not fit one payload");
    }
    return BENCH_OK;
}
