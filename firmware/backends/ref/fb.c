/* See fb.h. Loads go through memcpy: the upload buffer gives no alignment guarantee for fields, and
 * compilers turn these into single loads on targets with unaligned access. */
#include "fb.h"

#include <string.h>

uint32_t fb_ld_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

int32_t fb_ld_i32(const uint8_t *p)
{
    return (int32_t)fb_ld_u32(p);
}

uint16_t fb_ld_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

float fb_ld_f32(const uint8_t *p)
{
    uint32_t u = fb_ld_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int64_t fb_ld_i64(const uint8_t *p)
{
    return (int64_t)((uint64_t)fb_ld_u32(p) | ((uint64_t)fb_ld_u32(p + 4) << 32));
}

/* [pos, pos+n) lies inside the buffer. */
static int fits(const fb_buf *b, uint32_t pos, uint32_t n)
{
    return pos <= b->size && n <= b->size - pos;
}

int fb_root(const fb_buf *b, uint32_t *table)
{
    if (!fits(b, 0, 8)) {
        return -1;
    }
    uint32_t t = fb_ld_u32(b->data);
    if (!fits(b, t, 4)) {
        return -1;
    }
    *table = t;
    return 0;
}

int fb_field(const fb_buf *b, uint32_t table, unsigned id, uint32_t width, uint32_t *pos)
{
    if (!fits(b, table, 4)) {
        return -1;
    }
    int64_t vt = (int64_t)table - (int64_t)fb_ld_i32(b->data + table);
    if (vt < 0 || vt > (int64_t)b->size || !fits(b, (uint32_t)vt, 4)) {
        return -1;
    }
    uint32_t vtable = (uint32_t)vt;
    uint16_t vsize = fb_ld_u16(b->data + vtable);
    if (vsize < 4 || !fits(b, vtable, vsize)) {
        return -1;
    }
    uint32_t slot = 4u + 2u * id;
    if (slot + 2u > vsize) {
        *pos = 0;
        return 0;
    }
    uint16_t off = fb_ld_u16(b->data + vtable + slot);
    if (off == 0) {
        *pos = 0;
        return 0;
    }
    if (table > UINT32_MAX - off || !fits(b, table + (uint32_t)off, width)) {
        return -1;
    }
    *pos = table + off;
    return 0;
}

int fb_u8(const fb_buf *b, uint32_t table, unsigned id, uint8_t def, uint8_t *out)
{
    uint32_t pos;
    if (fb_field(b, table, id, 1, &pos)) {
        return -1;
    }
    *out = pos ? b->data[pos] : def;
    return 0;
}

int fb_i32(const fb_buf *b, uint32_t table, unsigned id, int32_t def, int32_t *out)
{
    uint32_t pos;
    if (fb_field(b, table, id, 4, &pos)) {
        return -1;
    }
    *out = pos ? fb_ld_i32(b->data + pos) : def;
    return 0;
}

int fb_f32(const fb_buf *b, uint32_t table, unsigned id, float def, float *out)
{
    uint32_t pos;
    if (fb_field(b, table, id, 4, &pos)) {
        return -1;
    }
    *out = pos ? fb_ld_f32(b->data + pos) : def;
    return 0;
}

int fb_u64(const fb_buf *b, uint32_t table, unsigned id, uint64_t *out)
{
    uint32_t pos;
    if (fb_field(b, table, id, 8, &pos)) {
        return -1;
    }
    *out = pos ? (uint64_t)fb_ld_i64(b->data + pos) : 0;
    return 0;
}

/* Follow the uoffset stored at `pos`. */
static int follow(const fb_buf *b, uint32_t pos, uint32_t *out)
{
    uint32_t rel = fb_ld_u32(b->data + pos);
    if (rel > b->size || pos > b->size - rel) {
        return -1;
    }
    *out = pos + rel;
    return 0;
}

int fb_table(const fb_buf *b, uint32_t table, unsigned id, uint32_t *out, int *present)
{
    uint32_t pos;
    *present = 0;
    if (fb_field(b, table, id, 4, &pos)) {
        return -1;
    }
    if (!pos) {
        return 0;
    }
    if (follow(b, pos, out) || !fits(b, *out, 4)) {
        return -1;
    }
    *present = 1;
    return 0;
}

int fb_vector(const fb_buf *b, uint32_t table, unsigned id, uint32_t elem, fb_vec *out)
{
    uint32_t pos, vec;
    out->pos = 0;
    out->len = 0;
    if (fb_field(b, table, id, 4, &pos)) {
        return -1;
    }
    if (!pos) {
        return 0;
    }
    if (follow(b, pos, &vec) || !fits(b, vec, 4)) {
        return -1;
    }
    uint32_t len = fb_ld_u32(b->data + vec);
    if (elem && len > (b->size - vec - 4) / elem) {
        return -1;
    }
    out->pos = vec + 4;
    out->len = len;
    return 0;
}

int fb_vec_table(const fb_buf *b, const fb_vec *v, uint32_t i, uint32_t *out)
{
    if (i >= v->len) {
        return -1;
    }
    uint32_t pos = v->pos + 4 * i;
    if (follow(b, pos, out) || !fits(b, *out, 4)) {
        return -1;
    }
    return 0;
}
