/* Integer benchmark: table-driven CRC-32 and a 64-bit multiplicative hash
 * over a generated buffer, repeated N times (argv[1], default 40). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t table[256];

static void make_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
}

static uint32_t crc32(const uint8_t *p, size_t n, uint32_t crc) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint64_t hash64(const uint8_t *p, size_t n, uint64_t h) {
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v;
        __builtin_memcpy(&v, p + i, 8);
        h ^= v * 0x9e3779b97f4a7c15ull;
        h = (h << 31 | h >> 33) * 0xbf58476d1ce4e5b9ull;
    }
    return h ^ (h >> 29);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 40;
    enum { N = 256 * 1024 };
    static uint8_t buf[N];
    uint64_t s = 1;
    for (size_t i = 0; i < N; i++) { s = s * 6364136223846793005ull + 1442695040888963407ull; buf[i] = (uint8_t)(s >> 56); }
    make_table();
    uint32_t crc = 0;
    uint64_t h = 0;
    for (int r = 0; r < reps; r++) {
        crc = crc32(buf, N, crc);
        h = hash64(buf, N, h + (uint64_t)r);
        buf[r % N] ^= (uint8_t)crc;
    }
    printf("crc %08x hash %016llx\n", crc, (unsigned long long)h);
    return 0;
}
