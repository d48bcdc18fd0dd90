/* bench firmware, MLPerf Tiny mode: the bench board port and backend answering the MLPerf Tiny (EEMBC)
 * benchmark serial protocol, so MLCommons' unchanged runner (benchmark/runner) can measure it.
 *
 * Our own parser, not the official one: the same answers (m-ready after each command, m-lap-us
 * timestamps, m-results, `infer N` defaulting to 10 warm-ups, `db print` printing the whole buffer),
 * but every length is bounds-checked: `db load` beyond the buffer is refused instead of kept, and
 * an over-long command is refused instead of being silently truncated. Performance mode only. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dut.h"

#define CMD_SIZE 80u
#ifndef DUT_BUFFER_BYTES
#define DUT_BUFFER_BYTES (96u * 96u * 3u) /* the official MAX_DB_INPUT_SIZE */
#endif
#ifndef BENCH_MLPERF_VERSION
#define BENCH_MLPERF_VERSION "bench firmware, MLPerf Tiny mode 1"
#endif

static char cmd[CMD_SIZE + 1];
static uint32_t cmd_len;
static uint8_t overflow;
static uint8_t buffer[DUT_BUFFER_BYTES];
static uint32_t buf_size, buf_pos;
static int model_ok;

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A decimal count > 0 that fits, else 0. */
static uint32_t count(const char *s)
{
    uint32_t v = 0;
    if (s == NULL || *s == 0) return 0;
    for (; *s; ++s) {
        if (*s < '0' || *s > '9' || v > 100000000u) return 0;
        v = v * 10u + (uint32_t)(*s - '0');
    }
    return v;
}

static void db(char *args)
{
    char *sub = strtok(args, " ");
    if (sub == NULL) {
        dut_puts("e-[Command 'db' requires a subcommand]\r\n");
    } else if (strcmp(sub, "load") == 0) {
        uint32_t n = count(strtok(NULL, " "));
        if (n == 0) {
            dut_puts("e-[Command 'db load' must be >0 bytes]\r\n");
        } else if (n > sizeof buffer) {
            buf_size = 0;
            dut_printf("e-[Supplied buffer size %lu exceeds maximum of %lu]\r\n", (unsigned long)n,
                       (unsigned long)sizeof buffer);
        } else {
            buf_size = n;
            buf_pos = 0;
            dut_printf("m-[Expecting %lu bytes]\r\n", (unsigned long)n);
        }
    } else if (strcmp(sub, "print") == 0) {
        for (uint32_t i = 0; i < buf_size; ++i) {
            dut_printf("%s%02x%s", i % 8u == 0 ? "m-buffer-" : "", buffer[i],
                       (i + 1u) % 8u == 0 || i + 1u == buf_size ? "\r\n" : "-");
        }
    } else {
        uint32_t digits = (uint32_t)strlen(sub);
        if (digits & 1u) {
            dut_puts("e-[Insufficent number of hex digits]\r\n"); /* the official spelling */
            return;
        }
        for (uint32_t i = 0; i < digits; i += 2u) {
            int hi = hexval(sub[i]), lo = hexval(sub[i + 1u]);
            if (hi < 0 || lo < 0) {
                dut_printf("e-[Invalid hex digit '%c%c']\r\n", sub[i], sub[i + 1u]);
                return;
            }
            if (buf_pos >= buf_size) { /* more digits than `db load` announced: ignored, as upstream */
                return;
            }
            buffer[buf_pos++] = (uint8_t)(hi << 4 | lo);
            if (buf_pos == buf_size) {
                dut_puts("m-load-done\r\n");
                return;
            }
        }
    }
}

static void infer(uint32_t n, uint32_t warmup)
{
    if (!model_ok) {
        dut_puts("e-[No model: see the boot message]\r\n");
        return;
    }
    dut_set_input(buffer, buf_pos);
    dut_printf("m-warmup-start-%lu\r\n", (unsigned long)warmup);
    while (warmup-- > 0) {
        dut_invoke();
    }
    dut_puts("m-warmup-done\r\n");
    dut_printf("m-infer-start-%lu\r\n", (unsigned long)n);
    dut_printf("m-lap-us-%lu\r\n", (unsigned long)dut_micros());
    while (n-- > 0) {
        dut_invoke();
    }
    dut_printf("m-lap-us-%lu\r\n", (unsigned long)dut_micros());
    dut_puts("m-infer-done\r\n");
    dut_print_results();
}

static void dispatch(char *line)
{
    char *tok = strtok(line, " ");
    if (tok == NULL) {
        dut_puts("e-[Unknown command: ]\r\n");
    } else if (strcmp(tok, "name") == 0) {
        dut_puts("m-name-dut-[bench]\r\n");
    } else if (strcmp(tok, "profile") == 0) {
        dut_printf("m-profile-[%s]\r\nm-model-[%s]\r\n", BENCH_MLPERF_VERSION, dut_model_name);
    } else if (strcmp(tok, "help") == 0) {
        dut_puts(BENCH_MLPERF_VERSION "\r\nname, profile, timestamp, db load N, db HH.., db print, "
                                      "infer N [W=10], results\r\n");
    } else if (strcmp(tok, "timestamp") == 0) {
        dut_printf("m-lap-us-%lu\r\n", (unsigned long)dut_micros());
    } else if (strcmp(tok, "db") == 0) {
        db(strtok(NULL, ""));
    } else if (strcmp(tok, "infer") == 0) {
        char *a = strtok(NULL, " "), *b = strtok(NULL, " ");
        uint32_t n = a ? count(a) : 1u, w = b ? (strcmp(b, "0") == 0 ? 0u : count(b)) : 10u;
        if (n == 0) {
            dut_puts("e-[Inference iterations must be >0]\r\n");
        } else if (b && w == 0 && strcmp(b, "0") != 0) {
            dut_puts("e-[Inference warmup must be >=0]\r\n");
        } else {
            infer(n, w);
        }
    } else if (strcmp(tok, "results") == 0) {
        dut_print_results();
    } else {
        dut_printf("e-[Unknown command: %.40s]\r\n", tok);
    }
}

int main(void)
{
    const char *why = "";
    model_ok = dut_init(&why) == 0;
    dut_puts("m-timestamp-mode-performance\r\n");
    dut_printf("m-lap-us-%lu\r\n", (unsigned long)dut_micros());
    dut_puts("m-init-done\r\n");
    if (!model_ok) {
        dut_printf("e-[Model setup failed: %s]\r\n", why);
    }
    dut_puts("m-ready\r\n");
    for (;;) {
        uint8_t rx[32];
        uint32_t n = dut_read(rx, sizeof rx);
        for (uint32_t i = 0; i < n; ++i) {
            char c = (char)rx[i];
            if (c == '%') {
                cmd[cmd_len] = 0;
                if (overflow) {
                    dut_printf("e-[Command longer than %u characters]\r\n", CMD_SIZE);
                } else {
                    dispatch(cmd);
                }
                dut_puts("m-ready\r\n");
                cmd_len = 0;
                overflow = 0;
            } else if (c == '\r' || c == '\n') {
                /* line endings some terminals add: not part of a command */
            } else if (cmd_len < CMD_SIZE) {
                cmd[cmd_len++] = c;
            } else {
                overflow = 1;
            }
        }
    }
}
