/* The firmware's main loop, the same on every Cortex-M board: feed received bytes to the core. */
#include <stdint.h>

#include "bench/proto.h"
#include "board.h"

#ifndef BOARD_MODEL_CAPACITY
#define BOARD_MODEL_CAPACITY (256u * 1024u)
#endif
#ifndef BOARD_ARENA_CAPACITY
#define BOARD_ARENA_CAPACITY (96u * 1024u)
#endif

/* Sections named so each board's linker script can put them in the right RAM. */
__attribute__((section(".model"), aligned(16))) static uint8_t model[BOARD_MODEL_CAPACITY];
__attribute__((section(".arena"), aligned(16))) static uint8_t arena[BOARD_ARENA_CAPACITY];

int main(void)
{
    board_init();
    bench_core_init(board_info(), model, sizeof model, arena, sizeof arena);
    bench_core_start(); /* the banner goes out before any request is read (§7.5) */
    for (;;) {
        uint8_t buf[64];
        uint32_t n = board_read(buf, sizeof buf);
        bench_core_rx(buf, n);
    }
}
