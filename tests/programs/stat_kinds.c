/* The stat family and lseek on each kind of file a program inherits or
 * opens: a regular file, both ends of a pipe, /dev/null and /dev/zero, a
 * directory. Programs size their output from these answers (GNU wc sizes
 * its columns from st_size of regular inputs and uses width 7 for the
 * rest; busybox and stdio pick buffer sizes from st_blksize), so each
 * field that is the same on every host is printed: the file type and
 * permission bits, size, blksize, blocks, nlink, the basic statx mask,
 * and lseek's result or errno. Never inodes, devices or times. */
#define _GNU_SOURCE
#include "support/common.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *ftype(mode_t m) {
    return S_ISREG(m) ? "reg" : S_ISDIR(m) ? "dir" : S_ISFIFO(m) ? "fifo" : S_ISCHR(m) ? "chr" : S_ISSOCK(m) ? "sock" : "other";
}

static void show(const char *what, int fd) {
    struct stat s;
    if (fstat(fd, &s) < 0) { printf("%-8s fstat: %s\n", what, strerror(errno)); return; }
    printf("%-8s fstat  %-4s perm=%03o size=%lld blksize=%ld blocks=%lld nlink=%ld\n", what, ftype(s.st_mode),
           (unsigned)(s.st_mode & 0777), (long long)s.st_size, (long)s.st_blksize, (long long)s.st_blocks, (long)s.st_nlink);
    struct statx x;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &x) < 0) { printf("%-8s statx: %s\n", what, strerror(errno)); return; }
    printf("%-8s statx  %-4s basic=%s size=%llu blksize=%u blocks=%llu\n", what, ftype(x.stx_mode),
           (x.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS ? "all" : "missing",
           (unsigned long long)x.stx_size, x.stx_blksize, (unsigned long long)x.stx_blocks);
    errno = 0;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t cur = lseek(fd, 0, SEEK_CUR);
    printf("%-8s lseek  end=%lld cur=%lld %s\n", what, (long long)end, (long long)cur, errno ? strerror(errno) : "");
}

int main(void) {
    int p[2];
    if (pipe(p) < 0) { printf("pipe: %s\n", strerror(errno)); return 1; }
    if (write(p[1], "abc", 3) != 3) return 1;
    show("pipe-r", p[0]);
    show("pipe-w", p[1]);

    const char *name = "stat-kinds.txt";
    int f = open(name, O_CREAT | O_RDWR | O_TRUNC, 0640);
    if (f < 0) { printf("open: %s\n", strerror(errno)); return 1; }
    for (int i = 0; i < 2000; i++) dprintf(f, "%d x\n", i);
    show("file", f);
    unlink(name);
    show("unlinked", f);

    int n = open("/dev/null", O_RDWR);
    show("null", n);
    int z = open("/dev/zero", O_RDONLY);
    show("zero", z);
    int d = open(".", O_RDONLY | O_DIRECTORY);
    struct stat s;
    fstat(d, &s);
    printf("dir      fstat  %s\n", ftype(s.st_mode));
    return 0;
}
