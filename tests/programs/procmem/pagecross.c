/* System-call buffers and strings that straddle page boundaries, for the
 * process VM's guest-memory test (tests/unit/process-memory.test.ts): a
 * path split across two pages, file and pipe I/O from and into buffers
 * spanning three pages, getcwd into a split buffer, a MAP_SHARED file
 * mapping kept coherent with pwrite and written back, mremap moving data,
 * fork (the child's copy, the parent's untouched) and execve with argv and
 * envp strings split across pages. Run as `pagecross DIR`; prints one line
 * per check and exits 0 when all pass. Output never contains pointers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096
#define LEN (2 * PG + 1000)

static int fails;

static void check(const char *what, int ok) {
    printf("%s %s\n", what, ok ? "ok" : "FAIL");
    if (!ok) fails++;
}

static unsigned char pattern(size_t i, unsigned seed) { return (unsigned char)((i * 131u + seed) ^ (i >> 7)); }

static unsigned sum(const unsigned char *p, size_t n) {
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) s = s * 31u + p[i];
    return s;
}

/* A fresh anonymous mapping of `pages` pages (touched in a scattered order, so frames are not in address order). */
static unsigned char *pages(int n) {
    unsigned char *p = mmap(NULL, (size_t)n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { printf("mmap: %s\n", strerror(errno)); exit(2); }
    for (int i = n - 1; i >= 0; i -= 2) p[(size_t)i * PG] = 0;
    return p;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 2 && strcmp(argv[1], "--exec") == 0) {
        const char *v = getenv("PAGECROSS_VAR");
        check("exec argv", argc == 3 && strlen(argv[2]) == 3000 && argv[2][0] == 'a' && argv[2][2999] == 'z');
        check("exec envp", v != NULL && strlen(v) == 2500 && v[0] == 'e' && v[2499] == 'f');
        return fails != 0;
    }
    if (argc < 2 || chdir(argv[1]) != 0) { printf("usage: pagecross DIR\n"); return 2; }

    unsigned char *a = pages(4), *b = pages(4);
    /* A path split across a page boundary. */
    char *path = (char *)a + PG - 5;
    strcpy(path, "split-name.dat");
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    check("open split path", fd >= 0);

    unsigned char *src = a + PG - 300;
    for (size_t i = 0; i < LEN; i++) src[i] = pattern(i, 1);
    check("write 3 pages", write(fd, src, LEN) == LEN);
    unsigned char *dst = b + 777;
    check("pread 3 pages", pread(fd, dst, LEN, 0) == LEN && memcmp(src, dst, LEN) == 0);

    char *cwd = (char *)b + 2 * PG - 3;
    check("getcwd split", getcwd(cwd, 512) != NULL && strcmp(cwd, argv[1]) == 0);

    int pfd[2];
    check("pipe", pipe(pfd) == 0);
    memset(dst, 0, LEN);
    check("pipe write", write(pfd[1], src + 100, PG + 200) == PG + 200);
    check("pipe read", read(pfd[0], dst + PG - 1, PG + 200) == PG + 200 && memcmp(src + 100, dst + PG - 1, PG + 200) == 0);

    /* MAP_SHARED: a pwrite shows in the mapping, a store in the mapping reaches the file at munmap. */
    unsigned char *m = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    check("mmap shared", m != MAP_FAILED);
    unsigned char *patch = b + 3 * PG - 10;
    for (int i = 0; i < 40; i++) patch[i] = (unsigned char)(0xa0 + i);
    check("pwrite into mapping", pwrite(fd, patch, 40, PG - 20) == 40 && memcmp(m + PG - 20, patch, 40) == 0);
    for (int i = 0; i < 64; i++) m[2 * PG - 32 + i] = (unsigned char)i;
    check("munmap shared", munmap(m, 3 * PG) == 0);
    unsigned char back[64];
    check("write-back", pread(fd, back, 64, 2 * PG - 32) == 64 && back[0] == 0 && back[63] == 63 && back[17] == 17);
    close(fd);

    /* mremap moves the data to a bigger mapping. */
    unsigned char *r = pages(2);
    for (size_t i = 0; i < 2 * PG; i++) r[i] = pattern(i, 5);
    unsigned before = sum(r, 2 * PG);
    pages(1); /* something right after, so growing in place may be impossible */
    unsigned char *r2 = mremap(r, 2 * PG, 6 * PG, MREMAP_MAYMOVE);
    check("mremap", r2 != MAP_FAILED && sum(r2, 2 * PG) == before && r2[5 * PG] == 0);

    /* fork: the child's writes stay in the child; it reports its view through a pipe. */
    unsigned sa = sum(src, LEN);
    pid_t pid = fork();
    if (pid == 0) {
        unsigned v = sum(src, LEN) == sa;
        memset(src, 0x5a, LEN);
        v |= (unsigned)(sum(src, LEN) != sa) << 1;
        write(pfd[1], &v, sizeof v);
        _exit(0);
    }
    unsigned v = 0;
    int st = -1;
    check("fork child", read(pfd[0], &v, sizeof v) == sizeof v && v == 3);
    check("fork wait", waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    check("fork parent copy", sum(src, LEN) == sa);

    /* execve with strings across page boundaries. */
    char *arg = (char *)a + 3 * PG - 1500, *env = (char *)b + PG - 1000;
    memset(arg, 'm', 3000); arg[0] = 'a'; arg[2999] = 'z'; arg[3000] = 0;
    strcpy(env, "PAGECROSS_VAR=");
    memset(env + 14, 'x', 2500); env[14] = 'e'; env[14 + 2499] = 'f'; env[14 + 2500] = 0;
    pid = fork();
    if (pid == 0) {
        char *av[] = { argv[0], "--exec", arg, NULL }, *ev[] = { env, NULL };
        execve(argv[0], av, ev);
        printf("execve: %s\n", strerror(errno));
        _exit(1);
    }
    check("exec wait", waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("%s\n", fails ? "some FAILED" : "all ok");
    return fails != 0;
}
