/* File I/O in a fresh directory under the current one: open/write/read,
 * lseek (SET/CUR/END, holes), pread/pwrite, fstat/stat/lstat, readdir
 * (sorted), rename, unlink, mkdir/rmdir, symlink/readlink, ftruncate,
 * dup/dup2, O_APPEND, O_EXCL errors, stdio fopen/fgets/fprintf. Prints
 * sizes, modes' file types and errno names; never inodes or times. */
#include "support/common.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(x) do { if ((x) < 0) { printf("FAIL %s: %s\n", #x, strerror(errno)); return 1; } } while (0)

static const char *ftype(mode_t m) {
    return S_ISREG(m) ? "reg" : S_ISDIR(m) ? "dir" : S_ISLNK(m) ? "lnk" : "other";
}
static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list(const char *dir) {
    DIR *d = opendir(dir);
    char *names[64];
    int n = 0;
    struct dirent *e;
    if (!d) { printf("opendir %s: %s\n", dir, strerror(errno)); return; }
    while ((e = readdir(d)) && n < 64) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmpstr);
    printf("ls %s:", dir);
    for (int i = 0; i < n; i++) { printf(" %s", names[i]); free(names[i]); }
    printf("\n");
}

int main(void) {
    const char *dir = "fileio.d";
    char buf[256];
    struct stat st;
    umask(022);
    CHECK(mkdir(dir, 0755));
    CHECK(chdir(dir));
    int fd = open("a.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd);
    const char *msg = "hello, file\nsecond line\n";
    ssize_t n = write(fd, msg, strlen(msg));
    printf("write %zd\n", n);
    printf("lseek cur %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    printf("lseek set 7 -> %ld\n", (long)lseek(fd, 7, SEEK_SET));
    n = read(fd, buf, 4);
    buf[n > 0 ? n : 0] = 0;
    printf("read %zd '%s'\n", n, buf);
    printf("lseek end -5 -> %ld\n", (long)lseek(fd, -5, SEEK_END));
    printf("lseek hole -> %ld\n", (long)lseek(fd, 4096, SEEK_END));
    n = write(fd, "X", 1);
    CHECK(fstat(fd, &st));
    printf("fstat size %ld type %s mode %o\n", (long)st.st_size, ftype(st.st_mode), (unsigned)(st.st_mode & 0777));
    n = pread(fd, buf, 16, 4100);
    printf("pread in hole %zd:", n);
    for (ssize_t i = 0; i < n; i++) printf(" %02x", (unsigned char)buf[i]);
    printf("\n");
    n = pwrite(fd, "PW", 2, 0);
    printf("pwrite %zd cur %ld\n", n, (long)lseek(fd, 0, SEEK_CUR));
    CHECK(ftruncate(fd, 12));
    CHECK(lseek(fd, 0, SEEK_SET));
    n = read(fd, buf, sizeof buf);
    printf("after truncate read %zd '%.*s'\n", n, (int)n, buf);
    int fd2 = dup(fd);
    CHECK(fd2);
    printf("dup shares offset: %ld\n", (long)lseek(fd2, 0, SEEK_CUR));
    CHECK(dup2(fd, 20));
    printf("dup2 offset %ld\n", (long)lseek(20, 3, SEEK_SET));
    printf("fd cur after dup2 seek %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    close(20);
    close(fd2);
    CHECK(close(fd));
    printf("close again: %s\n", close(fd) < 0 && errno == EBADF ? "EBADF" : "unexpected");

    fd = open("a.txt", O_CREAT | O_EXCL | O_WRONLY, 0600);
    printf("O_EXCL on existing: %s\n", fd < 0 && errno == EEXIST ? "EEXIST" : "unexpected");
    fd = open("missing.txt", O_RDONLY);
    printf("open missing: %s\n", fd < 0 && errno == ENOENT ? "ENOENT" : "unexpected");
    fd = open("a.txt", O_WRONLY | O_APPEND);
    CHECK(fd);
    CHECK(lseek(fd, 0, SEEK_SET));
    n = write(fd, "+app", 4);
    CHECK(fstat(fd, &st));
    printf("append size %ld\n", (long)st.st_size);
    close(fd);

    FILE *f = fopen("b.txt", "w");
    if (!f) { printf("fopen: %s\n", strerror(errno)); return 1; }
    for (int i = 0; i < 100; i++) fprintf(f, "line %03d %x\n", i, i * i);
    fclose(f);
    f = fopen("b.txt", "r");
    int lines = 0;
    u64 h = 0;
    while (fgets(buf, sizeof buf, f)) { lines++; h = h * 31 + fnv1a(buf, strlen(buf)); }
    printf("fgets lines %d hash %016" PRIx64 " eof %d\n", lines, h, feof(f) != 0);
    fclose(f);

    CHECK(mkdir("sub", 0700));
    CHECK(rename("b.txt", "sub/c.txt"));
    CHECK(symlink("sub/c.txt", "link"));
    n = readlink("link", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("readlink %zd %s\n", n, buf);
    CHECK(lstat("link", &st));
    printf("lstat link type %s\n", ftype(st.st_mode));
    CHECK(stat("link", &st));
    printf("stat link target type %s size %ld\n", ftype(st.st_mode), (long)st.st_size);
    CHECK(stat("sub", &st));
    printf("stat sub type %s mode %o\n", ftype(st.st_mode), (unsigned)(st.st_mode & 0777));
    list(".");
    list("sub");
    printf("rmdir non-empty: %s\n", rmdir("sub") < 0 && errno == ENOTEMPTY ? "ENOTEMPTY" : "unexpected");
    printf("unlink dir: %s\n", unlink("sub") < 0 && (errno == EISDIR || errno == EPERM) ? "refused" : "unexpected");
    CHECK(unlink("link"));
    CHECK(unlink("sub/c.txt"));
    CHECK(rmdir("sub"));
    CHECK(unlink("a.txt"));
    printf("stat after unlink: %s\n", stat("a.txt", &st) < 0 && errno == ENOENT ? "ENOENT" : "unexpected");
    list(".");
    CHECK(chdir(".."));
    CHECK(rmdir(dir));
    printf("done\n");
    return 0;
}
