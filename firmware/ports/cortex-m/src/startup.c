/* Reset handler and vector table shared by every Cortex-M board: copy .data, zero .bss, enable the
 * FPU when there is one, call main(). External interrupts all go through one handler that asks the
 * board (board_irq), so boards need no assembly and no per-vendor vector tables. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "cortex_m.h"

#ifndef BOARD_IRQ_COUNT
#define BOARD_IRQ_COUNT 48
#endif

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[], __stack_top[];
int main(void);

__attribute__((noreturn)) void reset_handler(void);
__attribute__((noreturn)) void reset_handler(void)
{
    memcpy(__data_start, __data_load, (uint32_t)((uint8_t *)__data_end - (uint8_t *)__data_start));
    memset(__bss_start, 0, (uint32_t)((uint8_t *)__bss_end - (uint8_t *)__bss_start));
#if defined(__ARM_FP)
    SCB_CPACR |= 0xFu << 20; /* CP10, CP11 full access: the FPU is off after reset */
    __asm volatile("dsb\n isb" ::: "memory");
#endif
    main();
    for (;;) {
    }
}

static void fault_handler(void)
{
    /* A fault is a firmware bug: reboot so the host sees a banner instead of silence. */
    cortex_m_reset();
}

static void irq_handler(void)
{
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    board_irq(ipsr - 16u);
}

static void ignore(void)
{
}

/* SysTick: the M0/M0+ cycle counter (cycles_systick.c) overrides this. */
__attribute__((weak)) void systick_handler(void);
__attribute__((weak)) void systick_handler(void)
{
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16 + BOARD_IRQ_COUNT])(void) = {
    [0] = (void (*)(void))(uintptr_t)__stack_top,
    [1] = reset_handler,
    [2] = ignore,        /* NMI */
    [3] = fault_handler, /* HardFault */
    [4] = fault_handler, /* MemManage */
    [5] = fault_handler, /* BusFault */
    [6] = fault_handler, /* UsageFault */
    [11] = ignore,       /* SVCall */
    [14] = ignore,       /* PendSV */
    [15] = systick_handler,
    [16 ... 16 + BOARD_IRQ_COUNT - 1] = irq_handler,
};

void cortex_m_reset(void)
{
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ */
    __asm volatile("dsb" ::: "memory");
    for (;;) {
    }
}
