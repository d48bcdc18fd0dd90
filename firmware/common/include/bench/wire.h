/* Little-endian field access for protocol payloads: a bounded writer and plain loads. */
#ifndef BENCH_WIRE_H
#define BENCH_WIRE_H

#include <stdint.h>

/* A writer never writes past `cap`; it remembers that something did not fit instead. */
typedef struct {
    uint8_t *buf;
    uint32_t len;
    uint32_t cap;
    int overflow;
} bench_writer;

void bw_u8(bench_writer *w, uint8_t v);
void bw_u16(bench_writer *w, uint16_t v);
void bw_u32(bench_writer *w, uint32_t v);
void bw_u64(bench_writer *w, uint64_t v);
void bw_f32(bench_writer *w, float v);
void bw_bytes(bench_writer *w, const uint8_t *data, uint32_t n);
/* `str`: u8 length + bytes, truncated to `max` bytes (and to 255). */
void bw_str(bench_writer *w, const char *s, uint32_t max);

uint16_t br_u16(const uint8_t *p);
uint32_t br_u32(const uint8_t *p);

#endif
