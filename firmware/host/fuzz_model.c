/* libFuzzer target: arbitrary bytes as a .tflite model into the reference backend's allocate and,
 * when that succeeds, one inference. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bench/backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t arena[64u * 1024u];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t model[256u * 1024u];
    if (size > sizeof model) {
        return 0;
    }
    memcpy(model, data, size);
    bench_backend_error err;
    uint32_t used;
    if (bench_backend_allocate(model, (uint32_t)size, arena, sizeof arena, &used, &err) == 0) {
        bench_backend_invoke(NULL, &err);
    }
    bench_backend_reset();
    return 0;
}
