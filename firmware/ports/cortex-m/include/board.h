/* What each Cortex-M board file provides besides the bench_port_* functions (bench/port.h). */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

#include "bench/port.h"

/* Clocks, the UART, the cycle counter and the marker line. */
void board_init(void);
/* Block until at least one byte arrived; return how many were copied (1..max). */
uint32_t board_read(uint8_t *buf, uint32_t max);
/* The HELLO facts of this board. */
const bench_port_info *board_info(void);
/* Called from the shared vector table for external interrupt `irq` (0-based). */
void board_irq(uint32_t irq);

#endif
