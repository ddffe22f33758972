/* malloc churn: random sizes from tiny to multi-megabyte (brk and mmap
 * paths), realloc growth and shrink, calloc zeroing, posix_memalign;
 * contents are verified and summarised, never addresses. */
#include "support/common.h"
#include <stdlib.h>

enum { SLOTS = 512 };
static unsigned char *slot[SLOTS];
static size_t size[SLOTS];
static unsigned char tag[SLOTS];

static int check(int i) {
    for (size_t k = 0; k < size[i]; k += 1 + size[i] / 64)
        if (slot[i][k] != (unsigned char)(tag[i] + k)) return 0;
    return 1;
}
static void fill(int i) { for (size_t k = 0; k < size[i]; k++) slot[i][k] = (unsigned char)(tag[i] + k); }

int main(void) {
    u64 seed = 777;
    u64 ops = 0, bad = 0, total = 0;
    for (int round = 0; round < 6000; round++) {
        int i = (int)(splitmix64(&seed) % SLOTS);
        u64 r = splitmix64(&seed);
        size_t sz;
        switch (r % 64) {
        case 0: sz = (size_t)(r >> 8) % (1u << 18) + 131072; break; /* large: mmap */
        case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: sz = (size_t)(r >> 8) % 8192; break;
        default: sz = (size_t)(r >> 8) % 256; break;
        }
        if (slot[i]) {
            bad += !check(i);
            if ((r >> 60) & 1) {
                unsigned char *p = realloc(slot[i], sz + 1);
                if (!p) { printf("realloc failed\n"); return 1; }
                size_t keep = size[i] < sz + 1 ? size[i] : sz + 1;
                size[i] = keep;
                slot[i] = p;
                bad += !check(i);
                size[i] = sz + 1;
                fill(i);
            } else {
                free(slot[i]);
                slot[i] = NULL;
            }
        } else {
            if ((r >> 61) & 1) {
                slot[i] = calloc(1, sz + 1);
                for (size_t k = 0; k <= sz; k++) bad += slot[i][k] != 0;
            } else {
                slot[i] = malloc(sz + 1);
            }
            if (!slot[i]) { printf("alloc failed\n"); return 1; }
            size[i] = sz + 1;
            tag[i] = (unsigned char)r;
            fill(i);
            total += sz + 1;
        }
        ops++;
    }
    for (int i = 0; i < SLOTS; i++) if (slot[i]) { bad += !check(i); free(slot[i]); }
    void *al = NULL;
    int rc = posix_memalign(&al, 4096, 10000);
    printf("posix_memalign rc %d aligned %d\n", rc, al && ((uintptr_t)al & 4095) == 0);
    free(al);
    /* one big block touched page by page */
    size_t big = 64u << 20;
    unsigned char *p = malloc(big);
    u64 sum = 0;
    for (size_t k = 0; k < big; k += 4096) p[k] = (unsigned char)(k >> 12);
    for (size_t k = 0; k < big; k += 4096) sum += p[k];
    free(p);
    printf("ops %" PRIu64 " bytes %" PRIu64 " bad %" PRIu64 " bigsum %" PRIu64 "\n", ops, total, bad, sum);
    return bad != 0;
}
