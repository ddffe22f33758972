/* Pipes between processes: a megabyte each way through full pipes, a
 * child's stdout redirected with dup2, end of file only once every write
 * end is closed, EPIPE, O_NONBLOCK, poll waiting for another process, and
 * a file offset shared across fork. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG (1 << 20)

static int write_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p += w; n -= (size_t)w;
    }
    return 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int down[2], up[2], st;
    if (pipe(down) || pipe(up)) return 1;
    pid_t p = fork();
    if (p == 0) {
        /* Child: sum what comes down, echo every byte back up, transformed. */
        close(down[1]); close(up[0]);
        static unsigned char buf[4096];
        unsigned long sum = 0, n = 0;
        ssize_t r;
        while ((r = read(down[0], buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < r; i++) { sum += buf[i]; buf[i] ^= 0x5a; }
            n += (unsigned long)r;
            if (write_all(up[1], buf, (size_t)r)) _exit(2);
        }
        char line[64];
        int len = snprintf(line, sizeof line, "|%lu %lu", n, sum);
        write_all(up[1], (unsigned char *)line, (size_t)len);
        _exit(r == 0 ? 0 : 3);
    }
    close(down[0]); close(up[1]);
    /* Parent: interleave writing and reading so neither pipe stays full. */
    unsigned char *out = malloc(BIG), *back = malloc(BIG + 64);
    for (int i = 0; i < BIG; i++) out[i] = (unsigned char)(i * 7 + (i >> 9));
    size_t sent = 0, got = 0;
    while (sent < BIG) {
        size_t chunk = BIG - sent < 65536 ? BIG - sent : 65536;
        if (write_all(down[1], out + sent, chunk)) return 4;
        sent += chunk;
        struct pollfd pf = { up[0], POLLIN, 0 };
        while (poll(&pf, 1, 0) > 0 && got < BIG + 64) {
            ssize_t r = read(up[0], back + got, BIG + 64 - got);
            if (r <= 0) break;
            got += (size_t)r;
        }
    }
    close(down[1]);
    ssize_t r;
    while ((r = read(up[0], back + got, BIG + 64 - got)) > 0) got += (size_t)r;
    close(up[0]);
    waitpid(p, &st, 0);
    int same = 1;
    for (int i = 0; i < BIG; i++) if ((unsigned char)(back[i] ^ 0x5a) != out[i]) { same = 0; break; }
    back[got] = 0;
    printf("round trip: %zu bytes back, data %s, child says %s, exit %d\n", got, same ? "intact" : "CORRUPT",
           (char *)back + BIG, WEXITSTATUS(st));

    /* dup2 onto stdout; the child's printf lands in the pipe. */
    int fds[2];
    if (pipe(fds)) return 1;
    p = fork();
    if (p == 0) {
        dup2(fds[1], 1); close(fds[0]); close(fds[1]);
        printf("hello from the child's stdout\n");
        fflush(stdout);
        _exit(0);
    }
    close(fds[1]);
    char buf[256];
    size_t n = 0;
    while ((r = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = 0;
    close(fds[0]);
    waitpid(p, &st, 0);
    printf("parent read: %s", buf);

    /* EOF needs every write end closed: the child keeps one open a while. */
    if (pipe(fds)) return 1;
    p = fork();
    if (p == 0) { close(fds[0]); usleep(30000); if (write(fds[1], "late", 4) != 4) _exit(1); _exit(0); }
    close(fds[1]);
    n = 0;
    while ((r = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = 0;
    printf("after EOF: \"%s\" (r=%zd)\n", buf, r);
    close(fds[0]);
    waitpid(p, &st, 0);

    /* No reader left: EPIPE (SIGPIPE ignored), then SIGPIPE kills a child. */
    if (pipe(fds)) return 1;
    p = fork();
    if (p == 0) { close(fds[0]); close(fds[1]); _exit(0); }
    close(fds[0]);
    waitpid(p, &st, 0);
    signal(SIGPIPE, SIG_IGN);
    errno = 0;
    r = write(fds[1], "x", 1);
    printf("write with no reader: %zd %s\n", r, strerror(errno));
    signal(SIGPIPE, SIG_DFL);
    p = fork();
    if (p == 0) { if (write(fds[1], "x", 1) < 0) _exit(5); _exit(0); }
    waitpid(p, &st, 0);
    printf("child writing: signalled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));
    close(fds[1]);

    /* O_NONBLOCK: EAGAIN while the writer is alive but silent. */
    if (pipe2(fds, O_NONBLOCK)) return 1;
    errno = 0;
    r = read(fds[0], buf, 1);
    printf("nonblocking empty read: %zd %s\n", r, strerror(errno));
    close(fds[0]); close(fds[1]);

    /* poll waits for another process. */
    if (pipe(fds)) return 1;
    p = fork();
    if (p == 0) { usleep(30000); if (write(fds[1], "!", 1) != 1) _exit(1); _exit(0); }
    struct pollfd pf = { fds[0], POLLIN, 0 };
    int pr = poll(&pf, 1, 10000);
    printf("poll: %d revents=%#x\n", pr, pf.revents);
    waitpid(p, &st, 0);
    close(fds[0]); close(fds[1]);

    /* A file offset is shared between parent and child after fork. */
    int fd = open("pipes-offset.tmp", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 1;
    p = fork();
    if (p == 0) { if (write(fd, "child\n", 6) != 6) _exit(1); _exit(0); }
    waitpid(p, &st, 0);
    if (write(fd, "parent\n", 7) != 7) return 1;
    printf("shared offset: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    lseek(fd, 0, SEEK_SET);
    n = (size_t)read(fd, buf, sizeof buf - 1);
    buf[n] = 0;
    printf("file: %s", buf);
    close(fd);
    unlink("pipes-offset.tmp");
    return 0;
}
