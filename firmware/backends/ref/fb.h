/* A bounds-checked reader for the FlatBuffers binary format, enough to walk a .tflite model in place.
 *
 * Every accessor checks that what it reads lies inside the buffer: a damaged or hostile model makes
 * the accessor fail (return -1), never read outside the upload buffer. Positions are byte offsets. */
#ifndef REF_FB_H
#define REF_FB_H

#include <stdint.h>

typedef struct {
    const uint8_t *data;
    uint32_t size;
} fb_buf;

typedef struct {
    uint32_t pos;   /* offset of the first element */
    uint32_t len;   /* element count */
} fb_vec;

uint32_t fb_ld_u32(const uint8_t *p);
int32_t fb_ld_i32(const uint8_t *p);
uint16_t fb_ld_u16(const uint8_t *p);
float fb_ld_f32(const uint8_t *p);
int64_t fb_ld_i64(const uint8_t *p);

/* The root table. */
int fb_root(const fb_buf *b, uint32_t *table);
/* Offset of field `id` of `table` holding `width` bytes, or 0 when the field is absent. -1: damaged. */
int fb_field(const fb_buf *b, uint32_t table, unsigned id, uint32_t width, uint32_t *pos);
/* Scalars with a default for absent fields. */
int fb_u8(const fb_buf *b, uint32_t table, unsigned id, uint8_t def, uint8_t *out);
int fb_i32(const fb_buf *b, uint32_t table, unsigned id, int32_t def, int32_t *out);
int fb_f32(const fb_buf *b, uint32_t table, unsigned id, float def, float *out);
int fb_u64(const fb_buf *b, uint32_t table, unsigned id, uint64_t *out);
/* A sub-table; *present = 0 when absent. */
int fb_table(const fb_buf *b, uint32_t table, unsigned id, uint32_t *out, int *present);
/* A vector of `elem` byte elements (absent: len 0). */
int fb_vector(const fb_buf *b, uint32_t table, unsigned id, uint32_t elem, fb_vec *out);
/* Element i of a vector of tables. */
int fb_vec_table(const fb_buf *b, const fb_vec *v, uint32_t i, uint32_t *out);

#endif
