#include "bench/wire.h"

#include <string.h>

void bw_bytes(bench_writer *w, const uint8_t *data, uint32_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = 1;
        return;
    }
    if (n) {
        memcpy(w->buf + w->len, data, n);
    }
    w->len += n;
}

void bw_u8(bench_writer *w, uint8_t v)
{
    bw_bytes(w, &v, 1);
}

void bw_u16(bench_writer *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    bw_bytes(w, b, 2);
}

void bw_u32(bench_writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    bw_bytes(w, b, 4);
}

void bw_u64(bench_writer *w, uint64_t v)
{
    bw_u32(w, (uint32_t)v);
    bw_u32(w, (uint32_t)(v >> 32));
}

void bw_f32(bench_writer *w, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    bw_u32(w, u);
}

void bw_str(bench_writer *w, const char *s, uint32_t max)
{
    uint32_t n = s ? (uint32_t)strlen(s) : 0;
    if (max > 255) {
        max = 255;
    }
    if (n > max) {
        n = max;
    }
    bw_u8(w, (uint8_t)n);
    bw_bytes(w, (const uint8_t *)s, n);
}

uint16_t br_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t br_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
