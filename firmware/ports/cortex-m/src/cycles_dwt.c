/* bench_port_cycles() from the DWT cycle counter (Cortex-M3/M4/M7/M33): exact CPU cycles. */
#include "bench/port.h"
#include "cortex_m.h"

void cycles_init(void);

void cycles_init(void)
{
    SCB_DEMCR |= 1u << 24; /* TRCENA: power the DWT */
    DWT_LAR = 0xC5ACCE55u; /* unlock on parts that lock it (M7); ignored elsewhere */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;        /* CYCCNTENA */
}

uint32_t bench_port_cycles(void)
{
    return DWT_CYCCNT;
}
