/* SET_INPUT, INVOKE and its timed window, GET_CYCLES, GET_OUTPUT, GET_PROFILE (PROTOCOL.md §4.6-4.9). */
#include <string.h>

#include "core.h"

#define HIST_BINS 32

static void prof_begin(void *ctx, uint32_t op)
{
    (void)ctx;
    (void)op;
    C.prof_t0 = bench_port_cycles();
}

static void prof_end(void *ctx, uint32_t op)
{
    (void)ctx;
    uint32_t dt = bench_port_cycles() - C.prof_t0;
    if (op < C.prof_ops) {
        C.prof[op] += dt;
    }
}

static uint8_t need_allocation(bench_writer *w)
{
    return C.allocated ? BENCH_OK : reply_error_u32(w, BENCH_E_STATE, 0, "not allocated");
}

uint8_t cmd_set_input(const uint8_t *req, uint32_t len, bench_writer *w)
{
    if (len < 6) {
        return reply_error(w, BENCH_E_BAD_LENGTH, "SET_INPUT needs index and offset");
    }
    if (need_allocation(w)) {
        return BENCH_E_STATE;
    }
    uint8_t index = req[0];
    uint32_t offset = br_u32(req + 2), n = len - 6u;
    bench_tensor_desc d;
    if (index >= bench_backend_tensor_count(0) || bench_backend_tensor_desc(0, index, &d)) {
        return reply_error(w, BENCH_E_BAD_ARG, "no such input");
    }
    uint64_t end = (uint64_t)offset + n;
    if (end > d.bytes) {
        return reply_error(w, BENCH_E_BAD_ARG, "write beyond the input tensor");
    }
    memcpy(bench_backend_tensor_data(0, index) + offset, req + 6, n);
    bw_u32(w, (uint32_t)end);
    return BENCH_OK;
}

/* Floor division for the histogram: (c - c0) may be negative. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

uint8_t cmd_invoke(const uint8_t *req, uint32_t len, bench_writer *w)
{
    if (len != 12) {
        return reply_error(w, BENCH_E_BAD_LENGTH, "INVOKE takes 12 bytes");
    }
    if (need_allocation(w)) {
        return BENCH_E_STATE;
    }
    uint32_t n = br_u32(req), warmup = br_u32(req + 4);
    uint8_t flags = req[8];
    if (n == 0 || n > BENCH_MAX_COUNT || warmup > BENCH_MAX_COUNT) {
        return reply_error(w, BENCH_E_BAD_ARG, "n must be 1..BENCH_MAX_COUNT and warmup at most that");
    }
    const bench_port_info *p = C.info;
    const int profile = (flags & BENCH_INVOKE_PROFILE) != 0;
    const int marker = (flags & BENCH_INVOKE_MARKER) && p->marker_pin != BENCH_NO_PIN;
    bench_op_hooks hooks = {prof_begin, prof_end, NULL};
    bench_backend_error err;
    memset(&err, 0, sizeof err);
    C.busy_mark = bench_port_cycles();
    C.log_valid = 0;
    for (uint32_t k = 0; k < warmup; ++k) {
        if (bench_backend_invoke(NULL, &err)) {
            return reply_error(w, BENCH_E_INVOKE_FAILED, err.message);
        }
        maybe_busy(k + 1);
    }
    if (profile) {
        C.prof_ops = bench_backend_op_count();
        C.prof_ops = C.prof_ops < BENCH_MAX_PROFILE_OPS ? C.prof_ops : BENCH_MAX_PROFILE_OPS;
        memset(C.prof, 0, sizeof C.prof);
    }
    uint32_t min = 0xFFFFFFFFu, max = 0, c0 = 0, width = 1;
    uint64_t sum = 0, sq_lo = 0, sq_hi = 0;
    uint32_t hist[HIST_BINS];
    memset(hist, 0, sizeof hist);
    const int logged = n <= BENCH_MAX_CYCLE_LOG;
    if (marker) {
        bench_port_marker(1);
    }
    for (uint32_t i = 0; i < n; ++i) {
        bench_port_align(); /* no-op on boards; emulators line up the tick phase of each count */
        uint32_t t0 = bench_port_cycles();
        int rc = bench_backend_invoke(profile ? &hooks : NULL, &err);
        uint32_t c = bench_port_cycles() - t0; /* modulo 2^32 by unsigned arithmetic */
        if (rc) {
            if (marker) {
                bench_port_marker(0);
            }
            return reply_error(w, BENCH_E_INVOKE_FAILED, err.message);
        }
        if (i == 0) {
            c0 = c;
            width = c / 64u ? c / 64u : 1u;
        }
        min = c < min ? c : min;
        max = c > max ? c : max;
        sum += c;
        uint64_t sq = (uint64_t)c * c;
        sq_lo += sq;
        sq_hi += sq_lo < sq; /* carry into the high half of the 128-bit sum */
        int64_t bin = 16 + floor_div((int64_t)c - (int64_t)c0, (int64_t)width);
        hist[bin < 0 ? 0 : (bin > HIST_BINS - 1 ? HIST_BINS - 1 : bin)]++;
        if (logged) {
            C.cycles[i] = c;
        }
        maybe_busy(warmup + i + 1);
    }
    if (marker) {
        bench_port_marker(0);
    }
    C.invoked = 1;
    C.log_valid = (uint8_t)logged;
    C.n_logged = logged ? n : 0;
    if (profile) {
        C.prof_valid = 1;
        C.prof_n = n;
    }
    bw_u32(w, p->clock_hz);
    bw_u8(w, p->cycle_source);
    bw_u8(w, (uint8_t)((logged ? 1 : 0) | (marker ? 2 : 0)));
    bw_u16(w, marker ? p->marker_pin : (uint16_t)BENCH_NO_PIN);
    bw_u32(w, n);
    bw_u32(w, warmup);
    bw_u32(w, min);
    bw_u32(w, max);
    bw_u64(w, sum);
    bw_u64(w, sq_lo);
    bw_u64(w, sq_hi);
    bw_u32(w, c0);
    bw_u32(w, width);
    bw_u16(w, HIST_BINS);
    bw_u16(w, 0);
    for (int b = 0; b < HIST_BINS; ++b) {
        bw_u32(w, hist[b]);
    }
    return BENCH_OK;
}

uint8_t cmd_get_cycles(const uint8_t *req, uint32_t len, bench_writer *w)
{
    if (len != 6) {
        return reply_error(w, BENCH_E_BAD_LENGTH, "GET_CYCLES takes 6 bytes");
    }
    uint32_t start = br_u32(req), count = br_u16(req + 4);
    if (!C.log_valid) {
        return reply_error_u32(w, BENCH_E_STATE, 0, "no per-inference counts kept");
    }
    if (count > (BENCH_MAX_PAYLOAD - 6u) / 4u || (uint64_t)start + count > C.n_logged) {
        return reply_error(w, BENCH_E_BAD_ARG, "counts out of range");
    }
    bw_u32(w, start);
    bw_u16(w, (uint16_t)count);
    for (uint32_t i = 0; i < count; ++i) {
        bw_u32(w, C.cycles[start + i]);
    }
    return BENCH_OK;
}

uint8_t cmd_get_output(const uint8_t *req, uint32_t len, bench_writer *w)
{
    if (len != 8) {
        return reply_error(w, BENCH_E_BAD_LENGTH, "GET_OUTPUT takes 8 bytes");
    }
    if (need_allocation(w)) {
        return BENCH_E_STATE;
    }
    uint8_t index = req[0];
    uint32_t offset = br_u32(req + 2), max_len = br_u16(req + 6);
    if (!C.invoked) {
        return reply_error_u32(w, BENCH_E_STATE, 0, "no INVOKE since ALLOCATE");
    }
    bench_tensor_desc d;
    if (index >= bench_backend_tensor_count(1) || bench_backend_tensor_desc(1, index, &d)) {
        return reply_error(w, BENCH_E_BAD_ARG, "no such output");
    }
    if (offset > d.bytes) {
        return reply_error(w, BENCH_E_BAD_ARG, "offset beyond the output tensor");
    }
    uint32_t n = d.bytes - offset;
    n = n < max_len ? n : max_len;
    n = n < BENCH_MAX_PAYLOAD - 8u ? n : BENCH_MAX_PAYLOAD - 8u;
    bw_u32(w, offset);
    bw_u32(w, d.bytes);
    bw_bytes(w, bench_backend_tensor_data(1, index) + offset, n);
    return BENCH_OK;
}

uint8_t cmd_get_profile(const uint8_t *req, uint32_t len, bench_writer *w)
{
    if (len != 4) {
        return reply_error(w, BENCH_E_BAD_LENGTH, "GET_PROFILE takes 4 bytes");
    }
    uint32_t start = br_u16(req), count = br_u16(req + 2);
    if (!C.prof_valid) {
        return reply_error_u32(w, BENCH_E_STATE, 0, "no profiled INVOKE since ALLOCATE");
    }
    uint32_t total = C.prof_ops;
    if (start > total) {
        return reply_error(w, BENCH_E_BAD_ARG, "start beyond the operators");
    }
    uint32_t room = (BENCH_MAX_PAYLOAD - 10u) / 16u;
    count = count < room ? count : room;
    count = count < total - start ? count : total - start;
    bw_u16(w, (uint16_t)total);
    bw_u16(w, (uint16_t)start);
    bw_u16(w, (uint16_t)count);
    bw_u32(w, C.prof_n);
    for (uint32_t i = start; i < start + count; ++i) {
        bw_u16(w, bench_backend_op_code(i));
        bw_u16(w, (uint16_t)i);
        bw_u64(w, C.prof[i]);
        bw_u32(w, 0);
    }
    return BENCH_OK;
}
