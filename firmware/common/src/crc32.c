/* Bitwise, table-free: 1 KB of table matters more on small parts than the speed does here (the CRC
 * runs once per frame and once per upload). */
#include "bench/crc32.h"

uint32_t bench_crc32(uint32_t crc, const uint8_t *data, uint32_t len)
{
    crc = ~crc;
    for (uint32_t i = 0; i < len; ++i) {
        crc ^= data[i];
        for (int k = 0; k < 8; ++k) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}
