/* What both MLPerf Tiny firmwares on a bench board share: the model built into the image, run through
 * a bench inference backend (ref or TFLM), the DUT's microsecond clock and text output.
 *
 * The peer (peer/, the official benchmark/api protocol code) and bench's own MLPerf mode
 * (bench_mode.c) differ only in who parses the commands. */
#ifndef MLPERF_DUT_H
#define MLPERF_DUT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Board, model and arena; 0 on success, else -1 with a message in `why` (printed by the caller). */
int dut_init(const char **why);
/* Bytes the model's first input takes. */
uint32_t dut_input_bytes(void);
/* Copy up to the input's size from `data` into the input tensor. */
void dut_set_input(const uint8_t *data, uint32_t len);
/* One inference; 0 on success. */
int dut_invoke(void);
/* The first output, dequantised, as "m-results-[v0,v1,...]\r\n". */
void dut_print_results(void);
/* Microseconds since boot, from the board's counter; wraps at 2^32 like the protocol's %lu. */
uint32_t dut_micros(void);
/* Write text to the UART. */
void dut_puts(const char *s);
/* printf-style into a bounded buffer, then to the UART (no floating point: newlib-nano). */
void dut_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Block until at least one byte arrived. */
uint32_t dut_read(uint8_t *buf, uint32_t max);
/* The timestamp GPIO of energy mode (FPGAIO LED0 on QEMU). */
void dut_pin(int level);

extern const char *const dut_model_name;

#ifdef __cplusplus
}
#endif

#endif
