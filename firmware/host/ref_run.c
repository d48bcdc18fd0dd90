/* Host runner for the reference backend, used by the pytest comparison with the TFLM runtime:
 *
 *   ref_run MODEL.tflite ARENA_BYTES < samples > outputs
 *
 * stdin holds N input samples back to back (the size of input 0 each); stdout receives output 0 for
 * each. One line of JSON on stderr reports the allocation (or the error, exit 3). */
#include <stdio.h>
#include <stdlib.h>

#include "bench/backend.h"

static uint8_t model[4u << 20];

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.tflite ARENA_BYTES < samples > outputs\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    size_t size = fread(model, 1, sizeof model, f);
    fclose(f);
    uint32_t capacity = (uint32_t)strtoul(argv[2], NULL, 0);
    uint8_t *arena = malloc(capacity ? capacity : 1); /* the host harness may allocate; firmware never does */
    uint32_t used = 0;
    bench_backend_error err;
    if (bench_backend_allocate(model, (uint32_t)size, arena, capacity, &used, &err)) {
        fprintf(stderr, "{\"status\": %d, \"required\": %lu, \"op_index\": %d, \"op\": \"%s\", \"message\": \"%s\"}\n",
                err.status, (unsigned long)err.required, err.op_index, err.op_name, err.message);
        return 3;
    }
    bench_tensor_desc in, out;
    bench_backend_tensor_desc(0, 0, &in);
    bench_backend_tensor_desc(1, 0, &out);
    fprintf(stderr, "{\"status\": 0, \"arena_used\": %lu, \"ops\": %lu, \"in_bytes\": %lu, \"out_bytes\": %lu}\n",
            (unsigned long)used, (unsigned long)bench_backend_op_count(), (unsigned long)in.bytes,
            (unsigned long)out.bytes);
    uint8_t *x = bench_backend_tensor_data(0, 0);
    const uint8_t *y = bench_backend_tensor_data(1, 0);
    while (fread(x, 1, in.bytes, stdin) == in.bytes) {
        if (bench_backend_invoke(NULL, &err)) {
            fprintf(stderr, "invoke failed: %s\n", err.message);
            return 4;
        }
        fwrite(y, 1, out.bytes, stdout);
    }
    free(arena);
    return 0;
}
