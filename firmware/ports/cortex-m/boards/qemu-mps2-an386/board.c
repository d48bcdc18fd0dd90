/* QEMU's mps2-an386 (Cortex-M4, 25 MHz): CMSDK UART0 with its RX interrupt into a ring, CMSDK timer0
 * as a free-running 32-bit counter, the FPGAIO LED0 as the timed-window marker.
 *
 * QEMU models no DWT cycle counter, so time comes from timer0 at 25 MHz. Under
 * `-icount shift=N,sleep=off` QEMU's virtual clock advances exactly 2^N ns per instruction, so the
 * count is deterministic and proportional to instructions executed: reported as ICOUNT (emulated),
 * never as cycles of a real Cortex-M4. */
#include "board.h"
#include "bench/status.h"
#include "cortex_m.h"
#include "rx_ring.h"

#define UART0 0x40004000u
#define UART_DATA REG32(UART0 + 0x00u)
#define UART_STATE REG32(UART0 + 0x04u)
#define UART_CTRL REG32(UART0 + 0x08u)
#define UART_INTSTATUS REG32(UART0 + 0x0Cu)
#define UART_BAUDDIV REG32(UART0 + 0x10u)
#define UART0_RX_IRQ 0u

#define TIMER0 0x40000000u
#define TIMER_CTRL REG32(TIMER0 + 0x00u)
#define TIMER_VALUE REG32(TIMER0 + 0x04u)
#define TIMER_RELOAD REG32(TIMER0 + 0x08u)
#define TIMER_INTSTATUS REG32(TIMER0 + 0x0Cu) /* read: wrapped; write 1: clear */
#define TIMER_INTCLEAR TIMER_INTSTATUS
#define TIMER0_IRQ 8u

#define FPGAIO_LED REG32(0x40028000u)

/* The counter: timer0 wraps every 2^16 ticks (2.6 ms); its interrupt counts the wraps, which extend
 * the 16-bit count to 32 bits. A short period keeps bench_port_align()'s wait short. */
#define TIMER_BITS 16u
#define TIMER_PERIOD (1u << TIMER_BITS)
static volatile uint32_t wraps;

/* Survives a SYSRESETREQ (QEMU does not clear RAM on reset), so each boot gets a new id. */
__attribute__((section(".noinit"))) static uint32_t boot_magic, boot_count;

static rx_ring ring;

static bench_port_info info = {
    .board = "qemu-mps2-an386",
    .cpu = "cortex-m4 (QEMU, -icount)",
    .clock_hz = 25000000u,
    .cycle_source = BENCH_CYCLES_ICOUNT,
    .marker_pin = 0, /* FPGAIO LED0 */
    .marker_active_high = 1,
    /* QEMU's serial backend stops reading the socket while the UART holds a byte, so nothing is
     * ever lost: a few frames in flight are safe and keep uploads streaming. */
    .rx_window = 4,
};

void board_init(void)
{
    if (boot_magic != 0xB007C0DEu) {
        boot_magic = 0xB007C0DEu;
        boot_count = 0x5EED0000u;
    }
    info.boot_id = ++boot_count;
    TIMER_CTRL = 0;
    TIMER_RELOAD = TIMER_PERIOD - 1u;
    TIMER_VALUE = TIMER_PERIOD - 1u;
    TIMER_CTRL = 1u | 8u; /* enable, interrupt at each wrap */
    UART_BAUDDIV = 16u;
    UART_CTRL = 0x1u | 0x2u | 0x8u; /* TX, RX, RX interrupt */
    nvic_enable(UART0_RX_IRQ);
    nvic_enable(TIMER0_IRQ);
    FPGAIO_LED = 0;
}

#define CTRL_RX_INT 0x8u

/* Move bytes from the UART into the ring while there is room. With the ring full the byte stays in
 * the UART, whose RX-full state makes QEMU stop reading the socket: flow control, nothing lost. */
static void drain_uart(void)
{
    while ((UART_STATE & 2u) && !rx_ring_full(&ring)) {
        rx_ring_put(&ring, (uint8_t)UART_DATA);
    }
    if (rx_ring_full(&ring)) {
        UART_CTRL &= ~CTRL_RX_INT; /* resumed by board_read() once there is room */
    }
}

void board_irq(uint32_t irq)
{
    if (irq == TIMER0_IRQ) {
        TIMER_INTCLEAR = 1u;
        wraps++;
    } else if (irq == UART0_RX_IRQ) {
        UART_INTSTATUS = 2u; /* clear first: a byte arriving during the drain raises it again */
        drain_uart();
    }
}

uint32_t board_read(uint8_t *buf, uint32_t max)
{
    uint32_t n = rx_ring_read(&ring, buf, max);
    if (!(UART_CTRL & CTRL_RX_INT)) {
        /* Enable before draining, so a byte that lands after the drain still interrupts. */
        irq_disable();
        UART_CTRL |= CTRL_RX_INT;
        drain_uart();
        irq_enable();
    }
    return n;
}

const bench_port_info *board_info(void)
{
    return &info;
}

void bench_port_write(const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; ++i) {
        while (UART_STATE & 1u) { /* TX full */
        }
        UART_DATA = data[i];
    }
}

uint32_t bench_port_cycles(void)
{
    uint32_t w, v, pending;
    do { /* the interrupt ran between the reads: read again */
        w = wraps;
        v = TIMER_VALUE;
        pending = TIMER_INTSTATUS & 1u;
        if (pending) { /* wrapped, interrupt not taken yet (QEMU takes it at a block boundary) */
            v = TIMER_VALUE;
        }
    } while (w != wraps);
    return ((w + pending) << TIMER_BITS) | (TIMER_PERIOD - 1u - v);
}

/* The 25 MHz timer ticks every 40 ns, an instruction takes 2^shift ns: where the first tick falls
 * relative to the start of an inference depends on everything executed before (serial traffic),
 * which moved counts by one tick between runs. Sleeping until the timer's next wrap interrupt puts
 * the start on a tick: with `-icount sleep=off` QEMU jumps virtual time straight to that deadline
 * (no real time passes), and from the interrupt on every instruction is the same in every run. */
void bench_port_align(void)
{
    uint32_t w = wraps;
    while (wraps == w) {
        wait_for_interrupt(); /* a serial byte may wake us too: its interrupt runs, we sleep again */
    }
}

void bench_port_marker(int active)
{
    FPGAIO_LED = active ? 1u : 0u;
}

void bench_port_reset(void)
{
    /* Let the answer leave the UART before the reset: the transmitter drains one byte at a time. */
    while (UART_STATE & 1u) {
    }
    cortex_m_reset();
}
