/* The submitter port of MLPerf Tiny's official benchmark/api for bench's boards (QEMU mps2-an386 first):
 * the peer DUT bench's `mlperf` device kind is tested against. The protocol is the official
 * internally_implemented.cpp, compiled unchanged from ../shared/third_party/mlperf-tiny; this file
 * only provides what submitter_implemented.h asks of a submitter: UART, timer, inference. */
#include "api/submitter_implemented.h"

#include "api/internally_implemented.h"
#include "dut.h"

#include <stdarg.h>

static volatile bool command_ready = false;

void th_load_tensor()
{
    static uint8_t input[MAX_DB_INPUT_SIZE];
    size_t n = ee_get_buffer(input, dut_input_bytes() < sizeof input ? dut_input_bytes() : sizeof input);
    dut_set_input(input, (uint32_t)n);
}

void th_results()
{
    dut_print_results();
}

void th_infer()
{
    if (dut_invoke() != 0) {
        th_printf("e-[Inference failed]\r\n");
    }
}

void th_timestamp(void)
{
#if EE_CFG_ENERGY_MODE == 1
    /* A falling edge the energy monitor timestamps; no text, as on every energy-mode DUT. */
    dut_pin(1);
    for (volatile int i = 0; i < 100; ++i) {
    }
    dut_pin(0);
#else
    th_printf(EE_MSG_TIMESTAMP, (unsigned long)dut_micros());
#endif
}

void th_printf(const char *fmt, ...)
{
    char text[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    dut_puts(text);
}

char th_getchar()
{
    uint8_t c;
    dut_read(&c, 1);
    return (char)c;
}

void th_serialport_initialize(void)
{
}

void th_timestamp_initialize(void)
{
    th_printf(EE_MSG_TIMESTAMP_MODE);
    th_timestamp();
}

void th_final_initialize(void)
{
}

void th_pre()
{
}

void th_post()
{
}

void th_command_ready(char volatile *msg)
{
    (void)msg;
    command_ready = true;
}

int th_strncmp(const char *str1, const char *str2, size_t n) { return strncmp(str1, str2, n); }
char *th_strncpy(char *dest, const char *src, size_t n) { return strncpy(dest, src, n); }
size_t th_strnlen(const char *str, size_t maxlen)
{
    size_t n = 0;
    while (n < maxlen && str[n]) {
        ++n;
    }
    return n;
}
char *th_strcat(char *dest, const char *src) { return strcat(dest, src); }
char *th_strtok(char *str1, const char *sep) { return strtok(str1, sep); }
int th_atoi(const char *str) { return atoi(str); }
void *th_memset(void *b, int c, size_t len) { return memset(b, c, len); }
void *th_memcpy(void *dst, const void *src, size_t n) { return memcpy(dst, src, n); }
int th_vprintf(const char *format, va_list ap)
{
    char text[200];
    int n = vsnprintf(text, sizeof text, format, ap);
    dut_puts(text);
    return n;
}

extern char volatile g_cmd_buf[EE_CMD_SIZE + 1];

int main(void)
{
    const char *why = "";
    int ok = dut_init(&why) == 0;
    ee_benchmark_initialize();
    if (!ok) {
        th_printf("e-[Model setup failed: %s]\r\n", why);
    }
    for (;;) {
        /* The official code expects ee_serial_callback() from the UART ISR and the command handled
         * outside it: the board's ISR fills a ring, this loop is the "outside". */
        uint8_t buf[32];
        uint32_t n = dut_read(buf, sizeof buf);
        for (uint32_t i = 0; i < n; ++i) {
            ee_serial_callback((char)buf[i]);
            if (command_ready) {
                command_ready = false;
                ee_serial_command_parser_callback((char *)g_cmd_buf);
            }
        }
    }
}
