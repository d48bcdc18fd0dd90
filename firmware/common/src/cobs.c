#include "bench/cobs.h"

uint32_t bench_cobs_encode(const uint8_t *in, uint32_t len, uint8_t *out, uint32_t cap)
{
    uint32_t code_pos = 0, o = 1;
    uint8_t code = 1;
    if (cap < 1) {
        return 0;
    }
    for (uint32_t i = 0; i < len; ++i) {
        if (in[i] == 0) {
            out[code_pos] = code;
            code_pos = o++;
            code = 1;
            if (code_pos >= cap) {
                return 0;
            }
            continue;
        }
        if (o >= cap) {
            return 0;
        }
        out[o++] = in[i];
        if (++code == 0xFF) {
            out[code_pos] = code;
            code_pos = o++;
            code = 1;
            if (code_pos >= cap) {
                return 0;
            }
        }
    }
    out[code_pos] = code;
    return o;
}

int32_t bench_cobs_decode(uint8_t *buf, uint32_t len)
{
    uint32_t i = 0, o = 0;
    while (i < len) {
        uint8_t code = buf[i++];
        if (code == 0 || (uint32_t)(code - 1) > len - i) {
            return -1;
        }
        for (uint8_t k = 1; k < code; ++k) {
            uint8_t b = buf[i++];
            if (b == 0) {
                return -1;
            }
            buf[o++] = b;
        }
        if (code < 0xFF && i < len) {
            buf[o++] = 0;
        }
    }
    return (int32_t)o;
}
