/* The protocol core (firmware/PROTOCOL.md): framing, dispatch, upload, allocation and the timed loop.
 *
 * A port calls bench_core_init() once with its buffers, bench_core_start() to send the boot banner,
 * then feeds every received byte to bench_core_rx(). Responses go out through bench_port_write()
 * from inside bench_core_rx(). No dynamic allocation: every buffer is static or given by the port. */
#ifndef BENCH_PROTO_H
#define BENCH_PROTO_H

#include <stdint.h>

#include "bench/port.h"

/* Largest payload accepted and sent (PROTOCOL.md §2.3): 256 .. 65535. */
#ifndef BENCH_MAX_PAYLOAD
#define BENCH_MAX_PAYLOAD 1024u
#endif
/* Per-inference counts kept for GET_CYCLES. */
#ifndef BENCH_MAX_CYCLE_LOG
#define BENCH_MAX_CYCLE_LOG 1024u
#endif
/* Operators profiled per INVOKE with PROFILE. */
#ifndef BENCH_MAX_PROFILE_OPS
#define BENCH_MAX_PROFILE_OPS 160u
#endif
#if defined(BENCH_FUZZ)
#define BENCH_MAX_COUNT 4u /* keeps every fuzz input fast; the bounds logic is the same */
#else
#define BENCH_MAX_COUNT 10000000u
#endif
/* Verified models kept side by side in the model buffer (1: only the current one). */
#ifndef BENCH_MODEL_SLOTS
#define BENCH_MODEL_SLOTS 8u
#endif
#define BENCH_FIRMWARE_VERSION "bench-fw/1"

/* The body of the largest frame and its encoded size (§2.3, §7.1). */
#define BENCH_BODY_MAX (BENCH_MAX_PAYLOAD + 12u)
#define BENCH_ENC_MAX (BENCH_BODY_MAX + BENCH_BODY_MAX / 254u + 1u)

void bench_core_init(const bench_port_info *info, uint8_t *model, uint32_t model_capacity, uint8_t *arena,
                     uint32_t arena_capacity);
void bench_core_start(void);
void bench_core_rx(const uint8_t *data, uint32_t len);

/* A LOG event (PROTOCOL.md §5): diagnostics a port wants the host to see (never required). */
void bench_core_log(const char *text);

/* Counters for diagnostics and tests. */
typedef struct {
    uint32_t frames, naks, duplicates;
} bench_core_stats;
const bench_core_stats *bench_core_get_stats(void);

#endif
