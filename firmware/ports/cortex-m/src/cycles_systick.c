/* bench_port_cycles() from SysTick (Cortex-M0/M0+, which have no DWT cycle counter): the 24-bit
 * down-counter at the CPU clock, extended to 32 bits by counting wraps in its interrupt. */
#include "bench/port.h"
#include "cortex_m.h"

void cycles_init(void);
void systick_handler(void);

static volatile uint32_t wraps;

void cycles_init(void)
{
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* CPU clock, interrupt, enable */
}

void systick_handler(void)
{
    wraps++;
}

uint32_t bench_port_cycles(void)
{
    /* With interrupts masked, a wrap that happened since the last interrupt shows as a pending
     * SysTick exception (ICSR.PENDSTSET): count it, re-reading the counter after the wrap. */
    irq_disable();
    uint32_t w = wraps, v = SYST_CVR;
    if (REG32(0xE000ED04u) & (1u << 26)) {
        v = SYST_CVR;
        w++;
    }
    irq_enable();
    return (w << 24) | (0x00FFFFFFu - v);
}
