/*
 * Shared helpers for the instruction-class test programs: boundary operand
 * values, inline-asm wrappers that force one exact instruction, and
 * deterministic hex printing. Output must never contain pointers, times
 * or pids: the programs are compared byte for byte between tsvm and QEMU.
 */
#ifndef TSVM_TEST_COMMON_H
#define TSVM_TEST_COMMON_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t u64;
typedef int64_t i64;
typedef uint32_t u32;
typedef int32_t i32;

/* Boundary and pattern operands for integer instructions. */
static const u64 VALS[] = {
    0x0ull,
    0x1ull,
    0x2ull,
    0x1full,
    0x20ull,
    0x3full,
    0x40ull,
    0x7full,
    0x80ull,
    0xffull,
    0x7fffull,
    0x8000ull,
    0x7fffffffull,
    0x80000000ull,
    0xffffffffull,
    0x100000000ull,
    0x7fffffffffffffffull,
    0x8000000000000000ull,
    0x8000000000000001ull,
    0xffffffff80000000ull,
    0xfffffffffffffffeull,
    0xffffffffffffffffull,
    0x0123456789abcdefull,
    0xfedcba9876543210ull,
    0x5555555555555555ull,
    0xaaaaaaaaaaaaaaaaull,
    0x00000000deadbeefull,
    0xffffffff0000ffffull,
};
#define NVALS ((int)(sizeof VALS / sizeof VALS[0]))

/* rd = op rs1, rs2 (one exact instruction) */
#define RR(op, a, b) ({ u64 _r; __asm__ volatile(op " %0, %1, %2" : "=r"(_r) : "r"((u64)(a)), "r"((u64)(b))); _r; })
/* rd = op rs1, imm */
#define RI(op, a, imm) ({ u64 _r; __asm__ volatile(op " %0, %1, %2" : "=r"(_r) : "r"((u64)(a)), "i"(imm)); _r; })
/* rd = op rs1 */
#define R1(op, a) ({ u64 _r; __asm__ volatile(op " %0, %1" : "=r"(_r) : "r"((u64)(a))); _r; })

/* Print "name a b -> r" for a two-operand op over every pair of VALS. */
#define TEST_RR(op)                                                                 \
    do {                                                                            \
        for (int _i = 0; _i < NVALS; _i++)                                          \
            for (int _j = 0; _j < NVALS; _j++)                                      \
                printf("%-8s %016" PRIx64 " %016" PRIx64 " -> %016" PRIx64 "\n", op, \
                       VALS[_i], VALS[_j], RR(op, VALS[_i], VALS[_j]));             \
    } while (0)

/* Print "name a imm -> r" for a reg-imm op over every value of VALS. */
#define TEST_RI(op, imm)                                                            \
    do {                                                                            \
        for (int _i = 0; _i < NVALS; _i++)                                          \
            printf("%-8s %016" PRIx64 " %6ld -> %016" PRIx64 "\n", op, VALS[_i],    \
                   (long)(imm), RI(op, VALS[_i], imm));                             \
    } while (0)

/* Print "name a -> r" for a one-operand op over every value of VALS. */
#define TEST_R1(op)                                                                 \
    do {                                                                            \
        for (int _i = 0; _i < NVALS; _i++)                                          \
            printf("%-8s %016" PRIx64 " -> %016" PRIx64 "\n", op, VALS[_i],         \
                   R1(op, VALS[_i]));                                               \
    } while (0)

/* FNV-1a over a byte range, for compact checks of large data. */
static inline u64 fnv1a(const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    u64 h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Deterministic 64-bit PRNG (splitmix64). */
static inline u64 splitmix64(u64 *s) {
    u64 z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#endif
