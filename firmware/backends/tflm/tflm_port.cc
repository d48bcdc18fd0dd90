// What TFLM needs from a bare-metal port: its timer hooks and a C library without a heap.
//
// Timer (tensorflow/lite/micro/micro_time.h) on the port's cycle counter. Replaces cortex_m_generic/micro_time.cc, which reads DWT->CYCCNT through a device header (and
// QEMU does not model the DWT). The bench measures per-op time itself (bench_op_hooks); these only
// serve TFLM code that asks for ticks, e.g. tflite::MicroProfiler in other firmware.
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "tensorflow/lite/micro/micro_time.h"

extern "C" uint32_t bench_port_cycles(void);

#ifndef BENCH_TFLM_TICKS_PER_SECOND
#define BENCH_TFLM_TICKS_PER_SECOND 0u  // unknown here: TFLM's converters treat 0 as "no timer"
#endif

namespace tflite {

uint32_t ticks_per_second() { return BENCH_TFLM_TICKS_PER_SECOND; }

uint32_t GetCurrentTimeTicks() { return bench_port_cycles(); }

}  // namespace tflite

// TFLM allocates nothing on the heap (TF_LITE_STATIC_MEMORY), but operator delete (virtual
// destructors) and newlib-nano's printf family reference malloc/free, and so _sbrk. There is no
// heap: any malloc fails cleanly instead of growing into the stack.
extern "C" void* _sbrk(ptrdiff_t increment) {
  (void)increment;
  errno = ENOMEM;
  return reinterpret_cast<void*>(-1);
}
