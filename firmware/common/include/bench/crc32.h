/* CRC-32/ISO-HDLC (zlib), as firmware/PROTOCOL.md §2.2 specifies; incremental. */
#ifndef BENCH_CRC32_H
#define BENCH_CRC32_H

#include <stdint.h>

/* Start with crc = 0; feed pieces; the result after each call is the CRC of everything so far. */
uint32_t bench_crc32(uint32_t crc, const uint8_t *data, uint32_t len);

#endif
