/* Internal state of the protocol core, shared by its command files. */
#ifndef BENCH_CORE_H
#define BENCH_CORE_H

#include <stdint.h>

#include "bench/backend.h"
#include "bench/proto.h"
#include "bench/status.h"
#include "bench/wire.h"

typedef struct {
    const bench_port_info *info;
    uint8_t *model;
    uint32_t model_cap;
    uint8_t *arena;
    uint32_t arena_cap;

    /* receive: one encoded frame, decoded in place */
    uint8_t rx[BENCH_ENC_MAX];
    uint32_t rx_len;
    uint32_t rx_dropped; /* bytes skipped of a frame that did not fit */

    /* transmit: a body under construction and the encoded last response (§2.4) */
    uint8_t body[BENCH_BODY_MAX];
    uint8_t last[BENCH_ENC_MAX + 2];
    uint32_t last_len;
    uint16_t last_seq;
    uint8_t last_cmd;
    uint8_t have_last;
    uint16_t seq; /* of the request being handled, for BUSY */

    /* upload (§4.4); verified models stay in the buffer as slots, so a model the host sends again
     * (the next repeat of a sweep) is "already held" and needs no bytes on the wire */
    uint8_t up_active, model_ok;
    uint32_t up_size, up_crc, up_watermark, up_offset;
    struct {
        uint32_t offset, size, crc;
    } slots[BENCH_MODEL_SLOTS];
    uint32_t n_slots;

    /* allocation and runs */
    uint8_t allocated, invoked, log_valid, prof_valid;
    uint32_t arena_used, arena_limit, n_logged, prof_n, prof_ops;
    uint32_t busy_mark;
    uint32_t prof_t0;
    uint32_t cycles[BENCH_MAX_CYCLE_LOG];
    uint64_t prof[BENCH_MAX_PROFILE_OPS];

    bench_core_stats stats;
} bench_core;

extern bench_core C;

/* A command handler reads `req` (already length-framed) and writes its OK payload to `w`, or
 * returns a status after writing that status's error fields with reply_error(). */
typedef uint8_t (*bench_handler)(const uint8_t *req, uint32_t len, bench_writer *w);

/* Error payload: the fields already written by the caller, then `str message`. */
uint8_t reply_error(bench_writer *w, uint8_t status, const char *message);
uint8_t reply_error_u32(bench_writer *w, uint8_t status, uint32_t detail, const char *message);

/* An event frame (seq given; BUSY uses the current request's). */
void send_event(uint8_t cmd, uint16_t seq, const uint8_t *payload, uint32_t len);
/* BUSY when half a second of cycles passed since the last one (§7.4). */
void maybe_busy(uint32_t progress);

uint8_t cmd_upload_begin(const uint8_t *req, uint32_t len, bench_writer *w);
uint8_t cmd_upload_chunk(const uint8_t *req, uint32_t len, bench_writer *w);
uint8_t cmd_upload_end(const uint8_t *req, uint32_t len, bench_writer *w);
uint8_t cmd_allocate(const uint8_t *req, uint32_t len, bench_writer *w);
uint8_t cmd_set_input(const uint8_t *req, uint32_t len, bench_writer *w);
uint8_t cmd_invoke(const uint8_t *req, uint32_t len, bench_writer *w);
uint8_t cmd_get_cycles(const uint8_t *req, uint32_t len, bench_writer *w);
uint8_t cmd_get_output(const uint8_t *req, uint32_t len, bench_writer *w);
uint8_t cmd_get_profile(const uint8_t *req, uint32_t len, bench_writer *w);

/* Forget the model's allocation (and the runs made on it). */
void forget_allocation(void);

#endif
