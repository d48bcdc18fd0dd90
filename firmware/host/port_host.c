#include "port_host.h"

#include <string.h>

#include "bench/proto.h"
#include "bench/status.h"

bench_port_info host_port_info = {"host", "x86_64", 1000000u, BENCH_CYCLES_TIMER, 7, 1, 1, 1};
uint8_t host_out[1u << 16];
uint32_t host_out_len;
int host_marker;
uint32_t host_resets;
static uint32_t ticks;
static uint8_t *g_model, *g_arena;
static uint32_t g_model_cap, g_arena_cap;

void bench_port_write(const uint8_t *data, uint32_t len)
{
    /* Keep the newest bytes: tests read what the last request produced. */
    if (len > sizeof host_out) {
        data += len - sizeof host_out;
        len = sizeof host_out;
    }
    if (host_out_len + len > sizeof host_out) {
        host_out_len = 0;
    }
    memcpy(host_out + host_out_len, data, len);
    host_out_len += len;
}

uint32_t bench_port_cycles(void)
{
    return ticks += 7; /* deterministic and never stuck */
}

void bench_port_align(void)
{
}

void bench_port_marker(int active)
{
    host_marker = active;
}

void host_port_boot(uint8_t *model, uint32_t model_cap, uint8_t *arena, uint32_t arena_cap)
{
    g_model = model;
    g_model_cap = model_cap;
    g_arena = arena;
    g_arena_cap = arena_cap;
    host_port_info.boot_id++;
    bench_core_init(&host_port_info, model, model_cap, arena, arena_cap);
    bench_core_start();
}

void bench_port_reset(void)
{
    host_resets++;
    host_port_boot(g_model, g_model_cap, g_arena, g_arena_cap);
}
