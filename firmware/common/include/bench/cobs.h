/* COBS framing (PROTOCOL.md §2.1). */
#ifndef BENCH_COBS_H
#define BENCH_COBS_H

#include <stdint.h>

/* Worst-case encoded size of n bytes, without the 0x00 delimiter. */
#define BENCH_COBS_MAX(n) ((n) + ((n) / 254u) + 1u)

/* Encode `len` bytes into `out` (capacity `cap`); returns the encoded length or 0 if it does not fit. */
uint32_t bench_cobs_encode(const uint8_t *in, uint32_t len, uint8_t *out, uint32_t cap);
/* Decode in place (the output is never longer than the input); returns the decoded length or -1 when
 * the encoding is invalid (a 0x00 inside, or a code byte running past the end). */
int32_t bench_cobs_decode(uint8_t *buf, uint32_t len);

#endif
