/* The inference backend interface: what the protocol core needs from an interpreter.
 *
 * One backend is linked into each image (backends/ref: C99, reads .tflite itself; backends/tflm:
 * C++ glue to TFLite Micro). The core owns the model buffer and the arena; a backend only borrows
 * them between bench_backend_allocate() and the next bench_backend_reset(). */
#ifndef BENCH_BACKEND_H
#define BENCH_BACKEND_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BENCH_MAX_DIMS 6

/* Why a backend call failed, in the protocol's terms (firmware/PROTOCOL.md §3). */
typedef struct {
    uint8_t status;         /* BENCH_E_MODEL_INVALID, _UNSUPPORTED_OP, _ARENA_TOO_SMALL, _INVOKE_FAILED */
    uint16_t builtin_code;  /* E_UNSUPPORTED_OP */
    uint16_t op_index;      /* E_UNSUPPORTED_OP */
    uint32_t required;      /* E_ARENA_TOO_SMALL: bytes the model needs, 0 if unknown */
    char op_name[48];       /* E_UNSUPPORTED_OP: TFLite's builtin name or the custom code */
    char message[120];      /* for the user; may be empty */
} bench_backend_error;

typedef struct {
    uint8_t type;           /* TFLite TensorType */
    uint8_t ndims;
    uint32_t dims[BENCH_MAX_DIMS];
    uint32_t bytes;
    float scale;            /* first (or only) quantization scale, 0 if none */
    int32_t zero_point;
} bench_tensor_desc;

/* Per-operator profile hooks, called around each operator during bench_backend_invoke(). */
typedef struct {
    void (*op_begin)(void *ctx, uint32_t op_index);
    void (*op_end)(void *ctx, uint32_t op_index);
    void *ctx;
} bench_op_hooks;

const char *bench_backend_name(void);
const char *bench_backend_version(void);

/* Forget any model and allocation (the buffers may be rewritten after this). */
void bench_backend_reset(void);

/* Parse `model` (kept in place, must stay valid until reset), check every operator is supported,
 * plan its tensors into `arena` and set it up. 0 on success with *used = arena bytes used; else -1
 * and `err` filled (E_ARENA_TOO_SMALL carries the bytes required in err->required). */
int bench_backend_allocate(const uint8_t *model, uint32_t size, uint8_t *arena, uint32_t capacity,
                           uint32_t *used, bench_backend_error *err);

/* After a successful allocate: the model's inputs (output = 0) or outputs (output = 1). */
uint32_t bench_backend_tensor_count(int output);
int bench_backend_tensor_desc(int output, uint32_t index, bench_tensor_desc *desc);
uint8_t *bench_backend_tensor_data(int output, uint32_t index);

/* Operators in execution order, for the per-op profile. */
uint32_t bench_backend_op_count(void);
uint16_t bench_backend_op_code(uint32_t op_index);

/* One inference on the current inputs. hooks may be NULL. */
int bench_backend_invoke(const bench_op_hooks *hooks, bench_backend_error *err);

#ifdef __cplusplus
}
#endif

#endif
