/* libFuzzer target: arbitrary bytes on the link into the frame parser and the dispatcher.
 *
 * Built with -DBENCH_FUZZ, which skips the two CRC checks (frame and model) so mutated frames and
 * models reach the commands and the reference backend. The first byte picks a small or a normal
 * arena so the too-small paths are exercised too. */
#include <stddef.h>
#include <stdint.h>

#include "bench/proto.h"
#include "port_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t model[64u * 1024u];
static uint8_t arena[32u * 1024u];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t arena_cap = size && (data[0] & 1) ? 512u : sizeof arena;
    host_out_len = 0;
    host_port_boot(model, sizeof model, arena, arena_cap);
    bench_core_rx(data, (uint32_t)size);
    static const uint8_t delimiter = 0;
    bench_core_rx(&delimiter, 1);
    return 0;
}
