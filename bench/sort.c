/* Sorting benchmark: quicksort, merge sort and libc qsort of pseudo-random
 * 64-bit keys, size N (argv[1], default 150000). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quicksort(int64_t *a, long lo, long hi) {
    while (lo < hi) {
        int64_t p = a[lo + (hi - lo) / 2];
        long i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p) i++;
            while (a[j] > p) j--;
            if (i <= j) { int64_t t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (j - lo < hi - i) { quicksort(a, lo, j); lo = i; } else { quicksort(a, i, hi); hi = j; }
    }
}

static void mergesort(int64_t *a, int64_t *tmp, long n) {
    for (long w = 1; w < n; w *= 2) {
        for (long i = 0; i < n; i += 2 * w) {
            long m = i + w < n ? i + w : n, e = i + 2 * w < n ? i + 2 * w : n, x = i, y = m, k = i;
            while (x < m && y < e) tmp[k++] = a[x] <= a[y] ? a[x++] : a[y++];
            while (x < m) tmp[k++] = a[x++];
            while (y < e) tmp[k++] = a[y++];
        }
        memcpy(a, tmp, (size_t)n * sizeof *a);
    }
}

static int cmp(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static uint64_t check(const int64_t *a, long n) {
    uint64_t h = 0;
    for (long i = 0; i < n; i++) {
        if (i && a[i - 1] > a[i]) return 0;
        h = h * 31 + (uint64_t)a[i];
    }
    return h;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 150000;
    int64_t *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b), *t = malloc((size_t)n * sizeof *t);
    uint64_t s = 42;
    for (long i = 0; i < n; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; a[i] = (int64_t)s; }
    memcpy(b, a, (size_t)n * sizeof *a);
    memcpy(t, a, (size_t)n * sizeof *a);
    quicksort(a, 0, n - 1);
    uint64_t h1 = check(a, n);
    mergesort(b, a, n);
    uint64_t h2 = check(b, n);
    qsort(t, (size_t)n, sizeof *t, cmp);
    uint64_t h3 = check(t, n);
    printf("sorted %ld: %016llx %016llx %016llx\n", n, (unsigned long long)h1, (unsigned long long)h2, (unsigned long long)h3);
    return !(h1 == h2 && h2 == h3 && h1 != 0);
}
