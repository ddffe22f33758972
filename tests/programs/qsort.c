/* qsort of integers, strings and structs (stable-by-index comparator),
 * bsearch, and a checksum of the sorted data. */
#include "support/common.h"
#include <stdlib.h>

struct rec { i32 key; u32 idx; char name[12]; };

static int cmp_u64(const void *a, const void *b) {
    u64 x = *(const u64 *)a, y = *(const u64 *)b;
    return x < y ? -1 : x > y;
}
static int cmp_i32desc(const void *a, const void *b) {
    i32 x = *(const i32 *)a, y = *(const i32 *)b;
    return x > y ? -1 : x < y;
}
static int cmp_rec(const void *a, const void *b) {
    const struct rec *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void) {
    u64 seed = 12345;
    enum { N = 20000 };
    static u64 a[N];
    static i32 b[N];
    static struct rec r[5000];
    for (int i = 0; i < N; i++) { a[i] = splitmix64(&seed); b[i] = (i32)(splitmix64(&seed) % 1000) - 500; }
    qsort(a, N, sizeof a[0], cmp_u64);
    qsort(b, N, sizeof b[0], cmp_i32desc);
    int sorted = 1;
    for (int i = 1; i < N; i++) sorted &= a[i - 1] <= a[i] && b[i - 1] >= b[i];
    printf("sorted %d hash-a %016" PRIx64 " hash-b %016" PRIx64 "\n", sorted, fnv1a(a, sizeof a), fnv1a(b, sizeof b));
    printf("min %016" PRIx64 " max %016" PRIx64 " median %016" PRIx64 "\n", a[0], a[N - 1], a[N / 2]);
    for (int k = 0; k < 10; k++) {
        u64 key = a[(k * 1999) % N];
        u64 *p = bsearch(&key, a, N, sizeof a[0], cmp_u64);
        printf("bsearch %016" PRIx64 " -> index %ld\n", key, p ? (long)(p - a) : -1L);
    }
    u64 missing = 3;
    printf("bsearch missing -> %s\n", bsearch(&missing, a, N, sizeof a[0], cmp_u64) ? "found" : "null");
    for (int i = 0; i < 5000; i++) {
        r[i].key = (i32)(splitmix64(&seed) % 50);
        r[i].idx = (u32)i;
        snprintf(r[i].name, sizeof r[i].name, "n%05u", (unsigned)(splitmix64(&seed) % 100000));
    }
    qsort(r, 5000, sizeof r[0], cmp_rec);
    for (int i = 0; i < 5000; i += 499) printf("rec %4d key %2d idx %4u %s\n", i, r[i].key, r[i].idx, r[i].name);
    char *names[5000];
    for (int i = 0; i < 5000; i++) names[i] = r[i].name;
    qsort(names, 5000, sizeof names[0], cmp_str);
    printf("first %s last %s\n", names[0], names[4999]);
    u64 h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 5000; i++) h = (h ^ fnv1a(names[i], strlen(names[i]))) * 0x100000001b3ull;
    printf("names hash %016" PRIx64 "\n", h);
    return 0;
}
