/* Shared DUT glue (see dut.h): the embedded model on a bench backend, the board's UART and timer. */
#include "dut.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bench/backend.h"
#include "board.h"

#ifndef DUT_ARENA_BYTES
#define DUT_ARENA_BYTES (512u * 1024u)
#endif
#ifndef DUT_MODEL_NAME
#define DUT_MODEL_NAME "unknown"
#endif

/* model_blob.S: the .tflite given to the build, 16-byte aligned in read-only memory. */
extern const uint8_t mlperf_model[], mlperf_model_end[];

const char *const dut_model_name = DUT_MODEL_NAME;

__attribute__((section(".arena"), aligned(16))) static uint8_t arena[DUT_ARENA_BYTES];
static bench_tensor_desc in_desc, out_desc;
static uint8_t *in_data, *out_data;
static bench_backend_error err;

/* Counter extension: bench_port_cycles() wraps every 2^32 ticks (172 s at 25 MHz); a window between
 * two timestamps is far shorter, so each call adds the difference since the previous one. */
static uint64_t ticks;
static uint32_t last_cycles;

int dut_init(const char **why)
{
    uint32_t used = 0;
    board_init();
    last_cycles = bench_port_cycles();
    bench_backend_reset();
    if (bench_backend_allocate(mlperf_model, (uint32_t)(mlperf_model_end - mlperf_model), arena, sizeof arena, &used,
                               &err) != 0 ||
        bench_backend_tensor_desc(0, 0, &in_desc) != 0 || bench_backend_tensor_desc(1, 0, &out_desc) != 0) {
        *why = err.message[0] ? err.message : "the model does not fit this firmware";
        return -1;
    }
    in_data = bench_backend_tensor_data(0, 0);
    out_data = bench_backend_tensor_data(1, 0);
    return 0;
}

uint32_t dut_input_bytes(void)
{
    return in_desc.bytes;
}

void dut_set_input(const uint8_t *data, uint32_t len)
{
    if (in_data != NULL) {
        memcpy(in_data, data, len < in_desc.bytes ? len : in_desc.bytes);
    }
}

int dut_invoke(void)
{
    return in_data != NULL ? bench_backend_invoke(NULL, &err) : -1;
}

/* value with 6 decimals, without printf's %f (newlib-nano has none) */
static void put_fixed(float v)
{
    char text[24];
    int neg = v < 0.0f;
    float a = neg ? -v : v;
    uint32_t whole = (uint32_t)a;
    uint32_t frac = (uint32_t)((a - (float)whole) * 1000000.0f + 0.5f);
    if (frac >= 1000000u) {
        whole += 1u;
        frac -= 1000000u;
    }
    snprintf(text, sizeof text, "%s%lu.%06lu", neg ? "-" : "", (unsigned long)whole, (unsigned long)frac);
    dut_puts(text);
}

void dut_print_results(void)
{
    uint32_t n = out_desc.bytes;
    int8_t elem = out_desc.type == 0 ? 4 : 1; /* TFLite TensorType: 0 float32, 3 uint8, 9 int8 */
    dut_puts("m-results-[");
    for (uint32_t i = 0; out_data != NULL && i < n / (uint32_t)elem; ++i) {
        float v;
        if (elem == 4) {
            memcpy(&v, out_data + 4u * i, 4);
        } else if (out_desc.type == 3) { /* uint8 */
            v = ((float)out_data[i] - (float)out_desc.zero_point) * out_desc.scale;
        } else { /* int8 */
            v = ((float)(int8_t)out_data[i] - (float)out_desc.zero_point) * out_desc.scale;
        }
        if (i) {
            dut_puts(",");
        }
        put_fixed(v);
    }
    dut_puts("]\r\n");
}

uint32_t dut_micros(void)
{
    uint32_t now = bench_port_cycles();
    ticks += (uint32_t)(now - last_cycles);
    last_cycles = now;
    return (uint32_t)(ticks / (board_info()->clock_hz / 1000000u));
}

void dut_puts(const char *s)
{
    bench_port_write((const uint8_t *)s, (uint32_t)strlen(s));
}

void dut_printf(const char *fmt, ...)
{
    char text[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    dut_puts(text);
}

uint32_t dut_read(uint8_t *buf, uint32_t max)
{
    return board_read(buf, max);
}

void dut_pin(int level)
{
    bench_port_marker(level);
}

/* newlib-nano's printf family references malloc, so _sbrk: a small fixed heap instead of the linker's
 * `end` (the board scripts define no heap). Weak: a TFLM build brings tflm_port.cc's, which has none. */
void *_sbrk(int incr) __attribute__((weak));
void *_sbrk(int incr)
{
    static uint8_t heap[8192] __attribute__((aligned(8)));
    static uint32_t used;
    if (incr < 0 || used + (uint32_t)incr > sizeof heap) {
        return (void *)-1;
    }
    void *p = heap + used;
    used += (uint32_t)incr;
    return p;
}
