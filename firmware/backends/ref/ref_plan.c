/* Arena planning: each non-constant tensor gets an offset so that tensors alive at the same time
 * never overlap. Greedy by size (largest first, lowest free offset), like TFLM's GreedyMemoryPlanner
 * in spirit; the figures differ from TFLM's because its arena also holds its own bookkeeping. */
#include "ref.h"

static uint32_t align_up(uint32_t v)
{
    return (v + REF_ALIGN - 1u) & ~(REF_ALIGN - 1u);
}

static int overlaps_in_time(const ref_tensor *a, const ref_tensor *b)
{
    return a->first <= b->last && b->first <= a->last;
}

uint32_t ref_plan(ref_tensor *t, uint32_t n)
{
    static uint16_t order[REF_MAX_TENSORS];
    static uint16_t placed[REF_MAX_TENSORS];
    uint32_t count = 0, n_placed = 0, extent = 0;
    for (uint32_t i = 0; i < n; ++i) {
        if (t[i].used && !t[i].is_const) {
            /* insertion sort by size, descending; ties keep index order for a stable plan */
            uint32_t j = count++;
            while (j > 0 && t[order[j - 1]].bytes < t[i].bytes) {
                order[j] = order[j - 1];
                --j;
            }
            order[j] = (uint16_t)i;
        }
    }
    for (uint32_t k = 0; k < count; ++k) {
        ref_tensor *cur = &t[order[k]];
        uint32_t size = align_up(cur->bytes);
        uint32_t offset = 0;
        /* Move past every conflicting tensor that overlaps [offset, offset+size) until none does;
         * each pass only moves upward, so this ends after at most n_placed passes. */
        int moved = 1;
        while (moved) {
            moved = 0;
            for (uint32_t p = 0; p < n_placed; ++p) {
                const ref_tensor *o = &t[placed[p]];
                uint32_t o_end = o->offset + align_up(o->bytes);
                if (overlaps_in_time(cur, o) && offset < o_end && o->offset < offset + size) {
                    offset = o_end;
                    moved = 1;
                }
            }
        }
        cur->offset = offset;
        placed[n_placed++] = order[k];
        if (offset + size > extent) {
            extent = offset + size;
        }
    }
    return extent;
}
