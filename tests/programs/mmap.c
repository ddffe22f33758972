/* Memory mapping: anonymous private/shared maps, MAP_FIXED over an
 * existing map, partial munmap, mprotect, mremap grow/move, MADV_DONTNEED,
 * file-backed MAP_PRIVATE (copy-on-write) and MAP_SHARED with msync, brk
 * via sbrk, and a big sparse mapping. Prints contents and results, never addresses. */
#define _GNU_SOURCE
#include "support/common.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    long pg = sysconf(_SC_PAGESIZE);
    printf("page size %ld\n", pg);
    unsigned char *a = mmap(NULL, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED) { printf("mmap failed\n"); return 1; }
    int zero = 1;
    for (long i = 0; i < 16 * pg; i++) zero &= a[i] == 0;
    printf("anonymous map is zeroed %d\n", zero);
    for (long i = 0; i < 16 * pg; i++) a[i] = (unsigned char)(i * 7);
    printf("hash %016" PRIx64 "\n", fnv1a(a, 16 * pg));
    /* MAP_FIXED replaces pages 4..5 with fresh zero pages */
    void *f = mmap(a + 4 * pg, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("MAP_FIXED same place %d, byte %d, neighbour %d\n", f == a + 4 * pg, a[4 * pg + 5], a[3 * pg + 5]);
    /* munmap the middle, the ends stay */
    printf("munmap middle %d\n", munmap(a + 8 * pg, 2 * pg));
    printf("ends intact %d %d\n", a[7 * pg + 1], a[10 * pg + 1]);
    printf("mprotect rdonly %d\n", mprotect(a, pg, PROT_READ));
    printf("read after mprotect %d\n", a[2]);
    printf("mprotect back %d\n", mprotect(a, pg, PROT_READ | PROT_WRITE));
    a[2] = 99;
    /* mremap: grow in place or move, contents preserved */
    unsigned char *b = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (long i = 0; i < 2 * pg; i++) b[i] = (unsigned char)(i ^ 0x5a);
    unsigned char *c = mremap(b, 2 * pg, 64 * pg, MREMAP_MAYMOVE);
    if (c == MAP_FAILED) {
        printf("mremap failed %d\n", errno);
    } else {
        int same = 1;
        for (long i = 0; i < 2 * pg; i++) same &= c[i] == (unsigned char)(i ^ 0x5a);
        c[64 * pg - 1] = 1;
        printf("mremap kept contents %d, new tail zero-filled then written %d\n", same, c[64 * pg - 1]);
    }
    /* shared anonymous */
    int *sh = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sh[10] = 1234;
    printf("shared anon %d\n", sh[10]);
    /* file-backed mappings */
    int fd = open("mmap-test.dat", O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0) { printf("open failed\n"); return 1; }
    char text[8192];
    for (int i = 0; i < (int)sizeof text; i++) text[i] = (char)('a' + i % 26);
    if (write(fd, text, sizeof text) != (ssize_t)sizeof text) return 1;
    char *priv = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    char *shr = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *off = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 4096);
    printf("file maps: %.8s %.8s %.8s\n", priv, shr + 100, off);
    priv[0] = 'P';
    shr[1] = 'S';
    printf("msync %d\n", msync(shr, 8192, MS_SYNC));
    char back[4];
    pread(fd, back, 3, 0);
    printf("file after writes: %.3s (private write stays private)\n", back);
    printf("priv view %.3s shared view %.3s\n", priv, shr);
    pwrite(fd, "XYZ", 3, 4096);
    printf("mapping sees file write: %.3s\n", off);
    struct stat st;
    fstat(fd, &st);
    char *beyond = mmap(NULL, 3 * 4096, PROT_READ, MAP_SHARED, fd, 0);
    printf("size %ld, map larger than file ok %d, last byte in file '%c'\n", (long)st.st_size, beyond != MAP_FAILED, beyond[8191]);
    close(fd);
    printf("map survives close: %.4s\n", shr + 26);
    unlink("mmap-test.dat");
    /* brk */
    void *b0 = sbrk(0);
    char *grown = sbrk(3 * pg);
    grown[0] = 1; grown[3 * pg - 1] = 2;
    void *b1 = sbrk(0);
    printf("sbrk grew by %ld, ends %d %d\n", (long)((char *)b1 - (char *)b0), grown[0], grown[3 * pg - 1]);
    sbrk(-pg);
    printf("sbrk shrink by %ld\n", (long)((char *)b1 - (char *)sbrk(0)));
    /* large sparse mapping: touch a few pages */
    size_t big = (size_t)1 << 30;
    unsigned char *sp = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (sp == MAP_FAILED) { printf("1 GiB sparse map failed\n"); }
    else {
        for (size_t o = 0; o < big; o += big / 8) sp[o] = (unsigned char)(o >> 27);
        unsigned s = 0;
        for (size_t o = 0; o < big; o += big / 8) s += sp[o];
        printf("sparse 1 GiB map touched, sum %u\n", s);
        munmap(sp, big);
    }
    /* MADV_DONTNEED: the private anonymous pages read as zero afterwards, their neighbours keep their bytes */
    unsigned char *dn = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(dn, 0x5a, 4 * pg);
    int dr = madvise(dn + pg, 2 * pg, MADV_DONTNEED);
    printf("MADV_DONTNEED %d: %02x %02x %02x %02x\n", dr, dn[pg - 1], dn[pg], dn[3 * pg - 1], dn[3 * pg]);
    dn[pg] = 7;
    printf("written again %d\n", dn[pg]);
    errno = 0;
    printf("MADV_WILLNEED %d, unaligned %d %s\n", madvise(dn, pg, MADV_WILLNEED), madvise(dn + 1, pg, MADV_DONTNEED), errno == EINVAL ? "EINVAL" : "?");
    munmap(dn, 4 * pg);
    printf("munmap unaligned: %d %s\n", munmap(a + 1, pg), errno == EINVAL ? "EINVAL" : "?");
    printf("mmap zero length: %s\n", mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == EINVAL ? "EINVAL" : "?");
    return 0;
}
