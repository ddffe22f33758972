/* Forks until fork fails (tsvm caps the number of tasks): the failure must
 * be a clean EAGAIN, and once the children are reaped fork works again.
 * Not compared with QEMU (the host's limits differ). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int fds[2];
    if (pipe(fds)) return 1;
    int n = 0;
    for (;;) {
        pid_t p = fork();
        if (p < 0) { printf("forked %d children, then: %s\n", n, strerror(errno)); break; }
        if (p == 0) {
            char c;
            close(fds[1]);
            _exit(read(fds[0], &c, 1) == 0 ? 0 : 1); /* until the parent closes the write end */
        }
        if (++n >= 100000) { printf("no limit after %d children\n", n); break; }
    }
    close(fds[1]);
    int reaped = 0, st;
    while (wait(&st) > 0) if (WIFEXITED(st) && WEXITSTATUS(st) == 0) reaped++;
    pid_t p = fork();
    if (p == 0) _exit(7);
    waitpid(p, &st, 0);
    printf("reaped all; fork works again: %d\n", reaped == n && WIFEXITED(st) && WEXITSTATUS(st) == 7);
    return 0;
}
