/* What a board port provides to the protocol core. All functions are called from one thread. */
#ifndef BENCH_PORT_H
#define BENCH_PORT_H

#include <stdint.h>

typedef struct {
    const char *board;          /* e.g. "qemu-mps2-an386" */
    const char *cpu;            /* e.g. "cortex-m4" */
    uint32_t clock_hz;          /* rate of bench_port_cycles() */
    uint8_t cycle_source;       /* BENCH_CYCLES_* (PROTOCOL.md §4.7) */
    uint16_t marker_pin;        /* GPIO of the timed-window line, BENCH_NO_PIN if none */
    uint8_t marker_active_high;
    uint8_t rx_window;          /* request frames the port can buffer while the core is busy */
    uint32_t boot_id;           /* differs on every boot */
} bench_port_info;

/* Write every byte (blocking). */
void bench_port_write(const uint8_t *data, uint32_t len);
/* A free-running counter at clock_hz; differences are taken modulo 2^32. */
uint32_t bench_port_cycles(void);
/* Called before each timed inference. Emulators use it to line the counter's tick phase up, so
 * a count does not depend on what happened before (boards with a cycle counter: do nothing). */
void bench_port_align(void);
/* Drive the timed-window line (1: active). Ports without a marker do nothing. */
void bench_port_marker(int active);
/* Reboot. On hardware this does not return; host builds re-initialise the core instead. */
void bench_port_reset(void);

#endif
