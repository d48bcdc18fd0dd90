/* Framing, dispatch, duplicates, HELLO/PING/RESET and events (PROTOCOL.md §2, §4.1-4.3, §5). */
#include <string.h>

#include "bench/cobs.h"
#include "bench/crc32.h"
#include "core.h"

bench_core C;

#define BANNER_MAX 256u /* §2.3: a HELLO answer fits 256 bytes before max_payload is known */

static void put_header(uint8_t *b, uint8_t cmd, uint8_t flags, uint16_t seq, uint16_t len, uint8_t status)
{
    b[0] = cmd;
    b[1] = flags;
    b[2] = (uint8_t)seq;
    b[3] = (uint8_t)(seq >> 8);
    b[4] = (uint8_t)len;
    b[5] = (uint8_t)(len >> 8);
    b[6] = status;
    b[7] = 0;
}

/* Seal a body (header + payload already in place) with its CRC, encode it into out, add the 0x00. */
static uint32_t seal(uint8_t *body, uint32_t payload_len, uint8_t *out, uint32_t cap)
{
    uint32_t n = 8u + payload_len;
    uint32_t crc = bench_crc32(0, body, n);
    body[n++] = (uint8_t)crc;
    body[n++] = (uint8_t)(crc >> 8);
    body[n++] = (uint8_t)(crc >> 16);
    body[n++] = (uint8_t)(crc >> 24);
    uint32_t enc = bench_cobs_encode(body, n, out, cap - 1u);
    if (enc == 0) {
        return 0;
    }
    out[enc++] = 0;
    return enc;
}

void send_event(uint8_t cmd, uint16_t seq, const uint8_t *payload, uint32_t len)
{
    static uint8_t body[BANNER_MAX + 12u];
    static uint8_t enc[BENCH_COBS_MAX(BANNER_MAX + 12u) + 1u];
    if (len > BANNER_MAX) {
        return;
    }
    put_header(body, cmd, BENCH_FLAG_EVENT, seq, (uint16_t)len, 0);
    if (len) {
        memcpy(body + 8, payload, len);
    }
    uint32_t n = seal(body, len, enc, sizeof enc);
    if (n) {
        bench_port_write(enc, n);
    }
}

void maybe_busy(uint32_t progress)
{
    uint32_t now = bench_port_cycles();
    if (now - C.busy_mark >= C.info->clock_hz / 2u) {
        uint8_t p[4] = {(uint8_t)progress, (uint8_t)(progress >> 8), (uint8_t)(progress >> 16),
                        (uint8_t)(progress >> 24)};
        send_event(BENCH_EVT_BUSY, C.seq, p, sizeof p);
        C.busy_mark = bench_port_cycles();
    }
}

uint8_t reply_error(bench_writer *w, uint8_t status, const char *message)
{
    bw_str(w, message, 200);
    return status;
}

uint8_t reply_error_u32(bench_writer *w, uint8_t status, uint32_t detail, const char *message)
{
    bw_u32(w, detail);
    return reply_error(w, status, message);
}

static void hello_info(bench_writer *w, uint16_t version)
{
    const bench_port_info *p = C.info;
    bw_u16(w, version);
    bw_u16(w, BENCH_PROTOCOL_VERSION);
    bw_u16(w, BENCH_PROTOCOL_VERSION);
    bw_u32(w, p->boot_id);
    bw_u32(w, p->clock_hz);
    bw_u32(w, C.arena_cap);
    bw_u32(w, C.model_cap);
    bw_u16(w, (uint16_t)BENCH_MAX_PAYLOAD);
    bw_u8(w, p->rx_window ? p->rx_window : 1);
    bw_u8(w, p->cycle_source);
    bw_u16(w, p->marker_pin);
    bw_u8(w, p->marker_active_high ? 1 : 0);
    bw_u8(w, 0);
    bw_u32(w, BENCH_MAX_CYCLE_LOG);
    bw_u32(w, 0); /* active_power_uw: real boards do not guess */
    /* 38 fixed bytes + 5 strings must fit 256: 40 bytes each is plenty for our names. */
    bw_str(w, p->board, 40);
    bw_str(w, p->cpu, 40);
    bw_str(w, BENCH_FIRMWARE_VERSION, 40);
    bw_str(w, bench_backend_name(), 40);
    bw_str(w, bench_backend_version(), 40);
}

static uint8_t cmd_hello(const uint8_t *req, uint32_t len, bench_writer *w)
{
    if (len != 4) {
        return reply_error(w, BENCH_E_BAD_LENGTH, "HELLO takes 4 bytes");
    }
    uint16_t lo = br_u16(req), hi = br_u16(req + 2);
    uint16_t version = hi < BENCH_PROTOCOL_VERSION ? hi : BENCH_PROTOCOL_VERSION;
    uint16_t floor = lo > BENCH_PROTOCOL_VERSION ? lo : BENCH_PROTOCOL_VERSION;
    if (version < floor) {
        bw_u16(w, BENCH_PROTOCOL_VERSION);
        bw_u16(w, BENCH_PROTOCOL_VERSION);
        return reply_error(w, BENCH_E_VERSION, "no common protocol version");
    }
    C.have_last = 0;
    hello_info(w, version);
    return BENCH_OK;
}

static uint8_t cmd_ping(const uint8_t *req, uint32_t len, bench_writer *w)
{
    bw_bytes(w, req, len);
    return BENCH_OK;
}

static uint8_t cmd_reset(const uint8_t *req, uint32_t len, bench_writer *w)
{
    (void)req;
    return len ? reply_error(w, BENCH_E_BAD_LENGTH, "RESET takes no payload") : BENCH_OK;
}

static bench_handler handler_for(uint8_t cmd)
{
    switch (cmd) {
    case BENCH_CMD_HELLO: return cmd_hello;
    case BENCH_CMD_RESET: return cmd_reset;
    case BENCH_CMD_PING: return cmd_ping;
    case BENCH_CMD_UPLOAD_BEGIN: return cmd_upload_begin;
    case BENCH_CMD_UPLOAD_CHUNK: return cmd_upload_chunk;
    case BENCH_CMD_UPLOAD_END: return cmd_upload_end;
    case BENCH_CMD_ALLOCATE: return cmd_allocate;
    case BENCH_CMD_SET_INPUT: return cmd_set_input;
    case BENCH_CMD_INVOKE: return cmd_invoke;
    case BENCH_CMD_GET_CYCLES: return cmd_get_cycles;
    case BENCH_CMD_GET_OUTPUT: return cmd_get_output;
    case BENCH_CMD_GET_PROFILE: return cmd_get_profile;
    default: return NULL;
    }
}

static void nak(uint8_t reason, uint32_t discarded)
{
    uint16_t d = discarded > 0xFFFFu ? 0xFFFFu : (uint16_t)discarded;
    uint8_t p[4] = {reason, 0, (uint8_t)d, (uint8_t)(d >> 8)};
    C.stats.naks++;
    send_event(BENCH_EVT_NAK, 0, p, sizeof p);
}

static void handle_request(uint8_t cmd, uint16_t seq, const uint8_t *payload, uint32_t len)
{
    if (C.have_last && C.last_seq == seq && C.last_cmd == cmd && cmd != BENCH_CMD_HELLO) {
        C.stats.duplicates++;
        bench_port_write(C.last, C.last_len); /* a retransmission: never run twice */
        return;
    }
    /* The request lives in C.rx and the answer is built in C.body: they never alias. */
    bench_writer w = {C.body + 8, 0, BENCH_MAX_PAYLOAD, 0};
    bench_handler h = handler_for(cmd);
    C.seq = seq;
    uint8_t status = h ? h(payload, len, &w) : reply_error(&w, BENCH_E_UNKNOWN_CMD, "unknown command");
    if (w.overflow) { /* a bug, not the host's fault: say so rather than send a truncated answer */
        w.len = 0;
        w.overflow = 0;
        status = reply_error(&w, BENCH_E_INTERNAL, "answer too long");
    }
    put_header(C.body, cmd, BENCH_FLAG_RESPONSE, seq, (uint16_t)w.len, status);
    C.last_len = seal(C.body, w.len, C.last, sizeof C.last);
    C.last_seq = seq;
    C.last_cmd = cmd;
    C.have_last = C.last_len != 0;
    if (C.last_len) {
        bench_port_write(C.last, C.last_len);
    }
    if (cmd == BENCH_CMD_RESET && status == BENCH_OK) {
        bench_port_reset();
    }
}

/* One complete encoded frame (without its delimiter) is in C.rx[0 .. n). */
static void handle_frame(uint32_t n)
{
    int32_t dec = bench_cobs_decode(C.rx, n);
    C.stats.frames++;
    if (dec < 0) {
        nak(BENCH_NAK_COBS, n);
        return;
    }
    uint32_t size = (uint32_t)dec;
    if (size < 12u) {
        nak(BENCH_NAK_SHORT, n);
        return;
    }
    uint32_t len = br_u16(C.rx + 4);
    if (8u + len + 4u != size) {
        nak(BENCH_NAK_SHORT, n);
        return;
    }
    uint32_t crc = bench_crc32(0, C.rx, 8u + len);
#if !defined(BENCH_FUZZ)
    /* The fuzz build skips this one check so inputs reach the dispatcher. */
    if (crc != br_u32(C.rx + 8u + len)) {
        nak(BENCH_NAK_CRC, n);
        return;
    }
#else
    (void)crc;
#endif
    if (C.rx[1] != 0 || len > BENCH_MAX_PAYLOAD) {
        return; /* responses and events are not for us */
    }
    handle_request(C.rx[0], br_u16(C.rx + 2), C.rx + 8, len);
}

void bench_core_rx(const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; ++i) {
        uint8_t b = data[i];
        if (b != 0) {
            if (C.rx_len < sizeof C.rx && !C.rx_dropped) {
                C.rx[C.rx_len++] = b;
            } else {
                C.rx_dropped++; /* too long for any valid frame: skip to the next delimiter */
            }
            continue;
        }
        if (C.rx_dropped) {
            nak(BENCH_NAK_TOO_LONG, C.rx_len + C.rx_dropped);
        } else if (C.rx_len) {
            handle_frame(C.rx_len);
        }
        C.rx_len = 0;
        C.rx_dropped = 0;
    }
}

void bench_core_init(const bench_port_info *info, uint8_t *model, uint32_t model_capacity, uint8_t *arena,
                     uint32_t arena_capacity)
{
    memset(&C, 0, sizeof C);
    C.info = info;
    C.model = model;
    C.model_cap = model_capacity;
    C.arena = arena;
    C.arena_cap = arena_capacity;
    bench_backend_reset();
}

void bench_core_start(void)
{
    uint8_t buf[BANNER_MAX];
    bench_writer w = {buf, 0, sizeof buf, 0};
    hello_info(&w, BENCH_PROTOCOL_VERSION);
    send_event(BENCH_CMD_HELLO, 0, buf, w.len);
    C.busy_mark = bench_port_cycles();
}

void bench_core_log(const char *text)
{
    uint32_t n = 0;
    while (text[n] && n < BANNER_MAX) {
        ++n;
    }
    send_event(BENCH_EVT_LOG, 0, (const uint8_t *)text, n);
}

const bench_core_stats *bench_core_get_stats(void)
{
    return &C.stats;
}

void forget_allocation(void)
{
    bench_backend_reset();
    C.allocated = C.invoked = C.log_valid = C.prof_valid = 0;
    C.n_logged = C.prof_n = C.prof_ops = 0;
}
