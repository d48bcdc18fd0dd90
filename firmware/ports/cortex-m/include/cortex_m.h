/* The few architectural registers (ARMv6-M/ARMv7-M) the ports touch; no CMSIS dependency. */
#ifndef CORTEX_M_H
#define CORTEX_M_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

#define SCB_AIRCR REG32(0xE000ED0Cu)
#define SCB_CPACR REG32(0xE000ED88u)
#define SCB_DEMCR REG32(0xE000EDFCu)
#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))
#define NVIC_ICPR(n) REG32(0xE000E280u + 4u * (n))
#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define DWT_CTRL REG32(0xE0001000u)
#define DWT_CYCCNT REG32(0xE0001004u)
#define DWT_LAR REG32(0xE0001FB0u)

static inline void irq_disable(void)
{
    __asm volatile("cpsid i" ::: "memory");
}

static inline void irq_enable(void)
{
    __asm volatile("cpsie i" ::: "memory");
}

static inline void wait_for_interrupt(void)
{
    __asm volatile("wfi" ::: "memory");
}

static inline void nvic_enable(uint32_t irq)
{
    NVIC_ISER(irq / 32u) = 1u << (irq % 32u);
}

/* Request a system reset (SYSRESETREQ) and wait for it. */
__attribute__((noreturn)) void cortex_m_reset(void);

#endif
