/* The host "board": output captured in memory, a cycle counter that advances per read. */
#ifndef PORT_HOST_H
#define PORT_HOST_H

#include <stdint.h>

#include "bench/port.h"

extern bench_port_info host_port_info;
extern uint8_t host_out[1u << 16];
extern uint32_t host_out_len;
extern int host_marker;
extern uint32_t host_resets;

void host_port_boot(uint8_t *model, uint32_t model_cap, uint8_t *arena, uint32_t arena_cap);

#endif
