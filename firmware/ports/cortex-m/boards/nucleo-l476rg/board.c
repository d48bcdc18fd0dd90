/* ST Nucleo-L476RG (STM32L476RG, Cortex-M4F): 80 MHz from HSI16 through the PLL, USART2 (PA2/PA3,
 * wired to the ST-LINK virtual COM port) at 921600 baud with an interrupt-fed receive ring, DWT
 * cycle counter, timed-window marker on PA5 (Arduino D13, also the green LED LD2; active high).
 * Register addresses and bits from ST's RM0351; no HAL, so the build needs only the arm toolchain. */
#include "board.h"
#include "bench/status.h"
#include "cortex_m.h"
#include "rx_ring.h"

#define RCC 0x40021000u
#define RCC_CR REG32(RCC + 0x00u)
#define RCC_CFGR REG32(RCC + 0x08u)
#define RCC_PLLCFGR REG32(RCC + 0x0Cu)
#define RCC_AHB2ENR REG32(RCC + 0x4Cu)
#define RCC_APB1ENR1 REG32(RCC + 0x58u)
#define FLASH_ACR REG32(0x40022000u)
#define GPIOA 0x48000000u
#define GPIOA_MODER REG32(GPIOA + 0x00u)
#define GPIOA_OSPEEDR REG32(GPIOA + 0x08u)
#define GPIOA_BSRR REG32(GPIOA + 0x18u)
#define GPIOA_AFRL REG32(GPIOA + 0x20u)
#define USART2 0x40004400u
#define USART_CR1 REG32(USART2 + 0x00u)
#define USART_BRR REG32(USART2 + 0x0Cu)
#define USART_ISR REG32(USART2 + 0x1Cu)
#define USART_ICR REG32(USART2 + 0x20u)
#define USART_RDR REG32(USART2 + 0x24u)
#define USART_TDR REG32(USART2 + 0x28u)
#define USART2_IRQ 38u

#define CLOCK_HZ 80000000u
#define BAUD 921600u
#define MARKER_PIN 5u /* PA5 */

void cycles_init(void);

static rx_ring ring;
static uint32_t boot_counter __attribute__((section(".noinit")));

static bench_port_info info = {
    .board = "nucleo-l476rg",
    .cpu = "cortex-m4f (STM32L476RG)",
    .clock_hz = CLOCK_HZ,
    .cycle_source = BENCH_CYCLES_DWT,
    .marker_pin = MARKER_PIN,
    .marker_active_high = 1,
    .rx_window = 2, /* the 4 KiB ring holds two full 1 KiB-payload frames with room to spare */
};

static void clock_80mhz(void)
{
    RCC_CR |= 1u << 8; /* HSI16 on */
    while (!(RCC_CR & (1u << 10))) {
    }
    FLASH_ACR = (FLASH_ACR & ~7u) | 4u; /* 4 wait states for 80 MHz at range 1 */
    /* PLL: HSI16 / M(1) * N(10) / R(2) = 80 MHz, VCO 160 MHz */
    RCC_PLLCFGR = (2u << 0) | (0u << 4) | (10u << 8) | (0u << 25) | (1u << 24);
    RCC_CR |= 1u << 24; /* PLL on */
    while (!(RCC_CR & (1u << 25))) {
    }
    RCC_CFGR = (RCC_CFGR & ~3u) | 3u; /* system clock = PLL */
    while (((RCC_CFGR >> 2) & 3u) != 3u) {
    }
}

void board_init(void)
{
    clock_80mhz();
    cycles_init();
    info.boot_id = ++boot_counter ^ 0xA5A50000u;
    RCC_AHB2ENR |= 1u;        /* GPIOA */
    RCC_APB1ENR1 |= 1u << 17; /* USART2 */
    /* PA2, PA3: alternate function 7 (USART2); PA5: push-pull output, low. */
    GPIOA_MODER = (GPIOA_MODER & ~((3u << 4) | (3u << 6) | (3u << 10))) | (2u << 4) | (2u << 6) | (1u << 10);
    GPIOA_OSPEEDR |= (3u << 4) | (3u << 10);
    GPIOA_AFRL = (GPIOA_AFRL & ~((0xFu << 8) | (0xFu << 12))) | (7u << 8) | (7u << 12);
    GPIOA_BSRR = 1u << (MARKER_PIN + 16u);
    USART_BRR = (CLOCK_HZ + BAUD / 2u) / BAUD;
    USART_CR1 = (1u << 0) | (1u << 2) | (1u << 3) | (1u << 5); /* UE, RE, TE, RXNEIE */
    nvic_enable(USART2_IRQ);
}

void board_irq(uint32_t irq)
{
    if (irq == USART2_IRQ) {
        uint32_t isr = USART_ISR;
        if (isr & (1u << 3)) {
            USART_ICR = 1u << 3; /* overrun: a byte was lost; the frame's CRC catches it */
        }
        if (isr & (1u << 5)) {
            rx_ring_put(&ring, (uint8_t)USART_RDR);
        }
    }
}

uint32_t board_read(uint8_t *buf, uint32_t max)
{
    return rx_ring_read(&ring, buf, max);
}

const bench_port_info *board_info(void)
{
    return &info;
}

void bench_port_write(const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; ++i) {
        while (!(USART_ISR & (1u << 7))) { /* TXE */
        }
        USART_TDR = data[i];
    }
}

void bench_port_align(void)
{
    /* DWT counts real cycles: nothing to line up. */
}

void bench_port_marker(int active)
{
    GPIOA_BSRR = active ? (1u << MARKER_PIN) : (1u << (MARKER_PIN + 16u));
}

void bench_port_reset(void)
{
    while (!(USART_ISR & (1u << 6))) { /* TC: the answer has left the wire */
    }
    cortex_m_reset();
}
