/* A single-producer (UART interrupt) / single-consumer (main loop) byte ring. */
#ifndef RX_RING_H
#define RX_RING_H

#include <stdint.h>

#define RX_RING_SIZE 4096u /* power of two */

typedef struct {
    volatile uint32_t head; /* written by the interrupt */
    volatile uint32_t tail; /* written by the main loop */
    uint8_t data[RX_RING_SIZE];
} rx_ring;

/* From the interrupt: store one byte; a full ring drops it (the protocol's CRC and retransmission
 * recover, and the announced rx_window keeps a well-behaved host below the size). */
static inline void rx_ring_put(rx_ring *r, uint8_t b)
{
    uint32_t h = r->head;
    if (h - r->tail < RX_RING_SIZE) {
        r->data[h % RX_RING_SIZE] = b;
        r->head = h + 1u;
    }
}

static inline int rx_ring_full(const rx_ring *r)
{
    return r->head - r->tail >= RX_RING_SIZE;
}

/* Block (sleeping) until bytes are there; copy up to max. */
uint32_t rx_ring_read(rx_ring *r, uint8_t *buf, uint32_t max);

#endif
