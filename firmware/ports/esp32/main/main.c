/* The bench firmware on ESP32 / ESP32-S3 (ESP-IDF v5): the protocol core on UART0 at 921600 baud,
 * cycle counts from the Xtensa CCOUNT register (XTENSA_CCOUNT), the timed-window marker on
 * CONFIG_BENCH_MARKER_GPIO, and free heap / stack high-water mark reported as LOG events whenever
 * they change. Not built in this repository's CI (needs ESP-IDF). */
#include <stdio.h>
#include <stdint.h>

#include "bench/proto.h"
#include "bench/status.h"
#include "driver/gpio.h"
#include "driver/uart.h"
#include "esp_cpu.h"
#include "esp_heap_caps.h"
#include "esp_private/esp_clk.h"
#include "esp_random.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

#define PROTO_UART UART_NUM_0
#define RX_BUFFER (8 * 1024)

static bench_port_info info = {
    .cycle_source = BENCH_CYCLES_XTENSA,
    .marker_active_high = 1,
    .rx_window = 4, /* the 8 KiB driver buffer holds four full 1 KiB-payload frames and more */
};

void bench_port_write(const uint8_t *data, uint32_t len)
{
    uart_write_bytes(PROTO_UART, data, len);
}

uint32_t bench_port_cycles(void)
{
    return (uint32_t)esp_cpu_get_cycle_count();
}

void bench_port_align(void)
{
}

void bench_port_marker(int active)
{
    if (CONFIG_BENCH_MARKER_GPIO >= 0) {
        gpio_set_level((gpio_num_t)CONFIG_BENCH_MARKER_GPIO, active ? 1 : 0);
    }
}

void bench_port_reset(void)
{
    uart_wait_tx_done(PROTO_UART, pdMS_TO_TICKS(100)); /* let the OK leave before rebooting */
    esp_restart();
}

static void report_memory(void)
{
    static uint32_t last_heap, last_stack;
    uint32_t heap = (uint32_t)esp_get_free_heap_size();
    uint32_t stack = (uint32_t)uxTaskGetStackHighWaterMark(NULL);
    if (heap != last_heap || stack != last_stack) {
        char text[80];
        snprintf(text, sizeof text, "free_heap=%lu stack_high_water=%lu", (unsigned long)heap, (unsigned long)stack);
        bench_core_log(text);
        last_heap = heap;
        last_stack = stack;
    }
}

/* Buffers are taken once at boot (PSRAM when the board has it); the protocol core itself never
 * allocates. */
static uint8_t *take(size_t bytes)
{
    uint8_t *p = heap_caps_aligned_alloc(16, bytes, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT);
    return p ? p : heap_caps_aligned_alloc(16, bytes, MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT);
}

void app_main(void)
{
    const uart_config_t uart = {
        .baud_rate = CONFIG_BENCH_UART_BAUD,
        .data_bits = UART_DATA_8_BITS,
        .parity = UART_PARITY_DISABLE,
        .stop_bits = UART_STOP_BITS_1,
        .flow_ctrl = UART_HW_FLOWCTRL_DISABLE,
        .source_clk = UART_SCLK_DEFAULT,
    };
    uart_driver_install(PROTO_UART, RX_BUFFER, 0, 0, NULL, 0);
    uart_param_config(PROTO_UART, &uart);
    if (CONFIG_BENCH_MARKER_GPIO >= 0) {
        gpio_reset_pin((gpio_num_t)CONFIG_BENCH_MARKER_GPIO);
        gpio_set_direction((gpio_num_t)CONFIG_BENCH_MARKER_GPIO, GPIO_MODE_OUTPUT);
        gpio_set_level((gpio_num_t)CONFIG_BENCH_MARKER_GPIO, 0);
    }
#if CONFIG_IDF_TARGET_ESP32S3
    info.board = "esp32s3";
    info.cpu = "xtensa-lx7";
#else
    info.board = "esp32";
    info.cpu = "xtensa-lx6";
#endif
    info.clock_hz = (uint32_t)esp_clk_cpu_freq();
    info.marker_pin = CONFIG_BENCH_MARKER_GPIO >= 0 ? (uint16_t)CONFIG_BENCH_MARKER_GPIO : BENCH_NO_PIN;
    info.boot_id = esp_random();
    const uint32_t model_bytes = CONFIG_BENCH_MODEL_KB * 1024u, arena_bytes = CONFIG_BENCH_ARENA_KB * 1024u;
    uint8_t *model = take(model_bytes);
    uint8_t *arena = take(arena_bytes);
    bench_core_init(&info, model, model ? model_bytes : 0, arena, arena ? arena_bytes : 0);
    bench_core_start();
    report_memory();
    for (;;) {
        uint8_t buf[256];
        int n = uart_read_bytes(PROTO_UART, buf, 1, portMAX_DELAY);
        if (n <= 0) {
            continue;
        }
        size_t more = 0;
        uart_get_buffered_data_len(PROTO_UART, &more);
        if (more > sizeof buf - 1) {
            more = sizeof buf - 1;
        }
        if (more) {
            n += uart_read_bytes(PROTO_UART, buf + 1, more, 0);
        }
        bench_core_rx(buf, (uint32_t)n);
        report_memory();
    }
}
