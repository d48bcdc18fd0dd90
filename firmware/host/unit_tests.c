/* Unit tests of the portable core on the host (built with ASan/UBSan): COBS, CRC, fixed-point
 * helpers, and the dispatcher's answers to bad input. Protocol behaviour end to end is tested from
 * Python against the QEMU image (tests/conformance, tests/test_qemu_*.py). */
#include <stdio.h>
#include <string.h>

#include "bench/cobs.h"
#include "bench/crc32.h"
#include "bench/proto.h"
#include "bench/status.h"
#include "port_host.h"
#include "qmath.h"

static int failures;
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static uint8_t model[4096];
static uint8_t arena[4096];

static void test_crc(void)
{
    CHECK(bench_crc32(0, (const uint8_t *)"123456789", 9) == 0xCBF43926u);
    uint32_t part = bench_crc32(0, (const uint8_t *)"1234", 4);
    CHECK(bench_crc32(part, (const uint8_t *)"56789", 5) == 0xCBF43926u);
}

static void test_cobs(void)
{
    uint8_t in[600], enc[700], dec[700];
    for (unsigned n = 0; n < sizeof in; n += 37) {
        for (unsigned i = 0; i < n; ++i) {
            in[i] = (uint8_t)(i % 7 == 0 ? 0 : i);
        }
        uint32_t e = bench_cobs_encode(in, n, enc, sizeof enc);
        CHECK(e > 0 && e <= BENCH_COBS_MAX(n));
        CHECK(memchr(enc, 0, e) == NULL);
        memcpy(dec, enc, e);
        CHECK(bench_cobs_decode(dec, e) == (int32_t)n && memcmp(dec, in, n) == 0);
    }
    memset(in, 0xAB, 254);
    CHECK(bench_cobs_encode(in, 254, enc, sizeof enc) == BENCH_COBS_MAX(254u));
    CHECK(bench_cobs_encode(in, 254, enc, 100) == 0); /* does not fit: refused, nothing overrun */
    uint8_t bad[3] = {5, 1, 2};                       /* code runs past the end */
    CHECK(bench_cobs_decode(bad, 3) == -1);
}

static void test_qmath(void)
{
    int32_t m;
    int s;
    q_quantize_multiplier(0.5, &m, &s);
    CHECK(m == 1073741824 && s == 0);
    q_quantize_multiplier(3.0, &m, &s);
    CHECK(m == 1610612736 && s == 2);
    CHECK(q_rdivpot(5, 1) == 3 && q_rdivpot(-5, 1) == -3 && q_rdivpot(4, 1) == 2);
    CHECK(q_srdhm(INT32_MIN, INT32_MIN) == INT32_MAX);
    CHECK(q_mul(1000, 1073741824, 0) == 500);
    CHECK(q_roundf(2.5f) == 3.0f && q_roundf(-2.5f) == -3.0f && q_roundf(2.4999f) == 2.0f);
    CHECK(q_clz32(0) == 32 && q_clz32(1) == 31 && q_clz32(0x80000000u) == 0);
}

/* Send one request frame; return the status byte of the response to it (-1: none). */
static int request(uint8_t cmd, uint16_t seq, const uint8_t *payload, uint16_t len)
{
    uint8_t body[BENCH_BODY_MAX], enc[BENCH_ENC_MAX + 1];
    body[0] = cmd;
    body[1] = 0;
    body[2] = (uint8_t)seq;
    body[3] = (uint8_t)(seq >> 8);
    body[4] = (uint8_t)len;
    body[5] = (uint8_t)(len >> 8);
    body[6] = body[7] = 0;
    if (len) {
        memcpy(body + 8, payload, len);
    }
    uint32_t crc = bench_crc32(0, body, 8u + len);
    memcpy(body + 8 + len, &crc, 4); /* little-endian host */
    uint32_t n = bench_cobs_encode(body, 12u + len, enc, sizeof enc);
    enc[n++] = 0;
    host_out_len = 0;
    bench_core_rx(enc, n);
    /* Find the response frame among what came out. */
    uint32_t start = 0;
    for (uint32_t i = 0; i < host_out_len; ++i) {
        if (host_out[i] != 0) {
            continue;
        }
        uint8_t frame[BENCH_ENC_MAX];
        uint32_t flen = i - start;
        memcpy(frame, host_out + start, flen);
        int32_t d = bench_cobs_decode(frame, flen);
        start = i + 1;
        if (d >= 12 && frame[1] == BENCH_FLAG_RESPONSE && frame[0] == cmd) {
            return frame[6];
        }
    }
    return -1;
}

static int saw_nak(void)
{
    uint8_t frame[64];
    for (uint32_t i = 0; i < host_out_len && i < sizeof frame; ++i) {
        if (host_out[i] == 0) {
            memcpy(frame, host_out, i);
            return bench_cobs_decode(frame, i) >= 12 && frame[0] == BENCH_EVT_NAK;
        }
    }
    return 0;
}

static void test_dispatch(void)
{
    host_port_boot(model, sizeof model, arena, sizeof arena);
    uint8_t hello[4] = {1, 0, 1, 0};
    CHECK(request(BENCH_CMD_HELLO, 1, hello, 4) == BENCH_OK);
    CHECK(request(BENCH_CMD_HELLO, 2, hello, 3) == BENCH_E_BAD_LENGTH);
    CHECK(request(0x5A, 3, NULL, 0) == BENCH_E_UNKNOWN_CMD);
    uint8_t inv[12] = {1, 0, 0, 0};
    CHECK(request(BENCH_CMD_INVOKE, 4, inv, 12) == BENCH_E_STATE);          /* before ALLOCATE */
    CHECK(request(BENCH_CMD_ALLOCATE, 5, inv, 4) == BENCH_E_STATE);         /* before an upload */
    uint8_t begin[8] = {0x01, 0x10, 0, 0, 0, 0, 0, 0};                      /* 4097 bytes > 4096 */
    CHECK(request(BENCH_CMD_UPLOAD_BEGIN, 6, begin, 8) == BENCH_E_TOO_LARGE);
    uint8_t chunk[8] = {0, 0, 0, 0, 1, 2, 3, 4};
    CHECK(request(BENCH_CMD_UPLOAD_CHUNK, 7, chunk, 8) == BENCH_E_STATE);   /* no UPLOAD_BEGIN */
    begin[1] = 0; /* 1 byte */
    CHECK(request(BENCH_CMD_UPLOAD_BEGIN, 8, begin, 8) == BENCH_OK);
    CHECK(request(BENCH_CMD_UPLOAD_CHUNK, 9, chunk, 8) == BENCH_E_BAD_ARG); /* beyond the model */
    uint8_t cyc[6] = {0};
    CHECK(request(BENCH_CMD_GET_CYCLES, 10, cyc, 6) == BENCH_E_STATE);
    CHECK(request(BENCH_CMD_GET_PROFILE, 11, cyc, 4) == BENCH_E_STATE);
    /* Garbage, a bad CRC and an oversized frame: NAKs, then the device still answers. */
    uint8_t junk[] = {0x55, 0xAA, 0x00};
    host_out_len = 0;
    bench_core_rx(junk, sizeof junk);
    CHECK(saw_nak());
    static uint8_t huge[BENCH_ENC_MAX + 100];
    memset(huge, 0x11, sizeof huge);
    huge[sizeof huge - 1] = 0;
    host_out_len = 0;
    bench_core_rx(huge, sizeof huge);
    CHECK(saw_nak());
    CHECK(request(BENCH_CMD_PING, 12, (const uint8_t *)"ok", 2) == BENCH_OK);
    /* RESET answers, then reboots with a banner. */
    uint32_t resets = host_resets;
    CHECK(request(BENCH_CMD_RESET, 13, NULL, 0) == BENCH_OK);
    CHECK(host_resets == resets + 1);
}

int main(void)
{
    test_crc();
    test_cobs();
    test_qmath();
    test_dispatch();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("unit tests passed\n");
    return 0;
}
