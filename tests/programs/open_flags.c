/* open(2) flag checks that coreutils depends on, against each kind of
 * path: O_DIRECTORY (with and without O_PATH, with O_NOFOLLOW) must fail
 * with ENOTDIR on a regular file or a symlink to one, which is how GNU mv
 * and cp tell "move into a directory" from "replace a file" (mv a b with b
 * a file: renameat2(RENAME_NOREPLACE) gives EEXIST, then
 * openat(b, O_PATH|O_DIRECTORY) must fail); then mv's own sequence and
 * O_CREAT|O_EXCL. Prints errno names only, never inodes or times. */
#define _GNU_SOURCE
#include "support/common.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case 0: return "ok";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EEXIST: return "EEXIST";
    case ELOOP: return "ELOOP";
    case EISDIR: return "EISDIR";
    default: return "other";
    }
}

static void try_open(const char *path, int flags, const char *fl) {
    errno = 0;
    int fd = open(path, flags);
    printf("open %-10s %-28s %s\n", path, fl, fd >= 0 ? "ok" : ename(errno));
    if (fd >= 0) close(fd);
}

int main(void) {
    if (mkdir("of-dir", 0755) < 0) { printf("mkdir: %s\n", ename(errno)); return 1; }
    int f = open("of-file", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (f < 0 || write(f, "a\n", 2) != 2) return 1;
    close(f);
    if (symlink("of-file", "of-lnkfile") < 0 || symlink("of-dir", "of-lnkdir") < 0) return 1;
    const char *paths[] = { "of-file", "of-dir", "of-lnkfile", "of-lnkdir", "of-none" };
    for (unsigned i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        try_open(paths[i], O_RDONLY | O_DIRECTORY, "O_DIRECTORY");
        try_open(paths[i], O_PATH | O_DIRECTORY, "O_PATH|O_DIRECTORY");
        try_open(paths[i], O_PATH | O_DIRECTORY | O_NOFOLLOW, "O_PATH|O_DIRECTORY|O_NOFOLLOW");
        try_open(paths[i], O_PATH, "O_PATH");
        try_open(paths[i], O_RDONLY | O_NOFOLLOW, "O_NOFOLLOW");
    }
    /* mv's sequence for "mv of-new of-file". */
    f = open("of-new", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (f < 0 || write(f, "new\n", 4) != 4) return 1;
    close(f);
    errno = 0;
    int r = renameat2(AT_FDCWD, "of-new", AT_FDCWD, "of-file", RENAME_NOREPLACE);
    printf("renameat2 NOREPLACE over a file: %s\n", r == 0 ? "ok" : ename(errno));
    errno = 0;
    int d = openat(AT_FDCWD, "of-file", O_PATH | O_DIRECTORY);
    printf("openat target O_PATH|O_DIRECTORY: %s\n", d >= 0 ? "ok" : ename(errno));
    if (d >= 0) close(d);
    r = renameat(AT_FDCWD, "of-new", AT_FDCWD, "of-file");
    printf("renameat over a file: %s\n", r == 0 ? "ok" : ename(errno));
    char buf[8] = {0};
    f = open("of-file", O_RDONLY);
    printf("of-file now: %s", f >= 0 && read(f, buf, sizeof buf - 1) > 0 ? buf : "?\n");
    if (f >= 0) close(f);
    errno = 0;
    f = open("of-file", O_CREAT | O_EXCL | O_WRONLY, 0644);
    printf("O_CREAT|O_EXCL on a file: %s\n", f >= 0 ? "ok" : ename(errno));
    errno = 0;
    f = open("of-lnkdir", O_CREAT | O_EXCL | O_WRONLY, 0644);
    printf("O_CREAT|O_EXCL on a symlink: %s\n", f >= 0 ? "ok" : ename(errno));
    unlink("of-lnkfile"); unlink("of-lnkdir"); unlink("of-file"); rmdir("of-dir");
    return 0;
}
