#include "rx_ring.h"

#include "cortex_m.h"

uint32_t rx_ring_read(rx_ring *r, uint8_t *buf, uint32_t max)
{
    /* Check and sleep with interrupts masked: a byte arriving between the check and WFI still wakes
     * WFI (pending interrupt), and is handled once interrupts are unmasked. */
    irq_disable();
    while (r->head == r->tail) {
        wait_for_interrupt();
        irq_enable();
        irq_disable();
    }
    irq_enable();
    uint32_t n = 0, t = r->tail;
    while (n < max && t != r->head) {
        buf[n++] = r->data[t % RX_RING_SIZE];
        ++t;
    }
    r->tail = t;
    return n;
}
