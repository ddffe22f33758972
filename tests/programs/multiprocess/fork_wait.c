/* fork and the wait family: exit codes, death by signal, WNOHANG, ECHILD,
 * waiting for any child, waitid's siginfo, getppid, orphans being
 * reparented, exit handlers in a child, many sequential forks, and a
 * fork bomb that must fail cleanly. Output never contains pids. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void bye(void) { printf("atexit handler in child\n"); }

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t me = getpid();
    int st;

    for (int i = 0; i < 4; i++) {
        pid_t p = fork();
        if (p == 0) _exit(getppid() == me ? i * 10 + 1 : 100);
        pid_t w = waitpid(p, &st, 0);
        printf("child %d: reaped=%d exited=%d code=%d\n", i, w == p, WIFEXITED(st), WEXITSTATUS(st));
    }

    /* Memory is copied: the child's writes are its own. */
    static int value = 1;
    pid_t p = fork();
    if (p == 0) { value = 2; _exit(value); }
    waitpid(p, &st, 0);
    printf("copy-on-fork: parent sees %d, child had %d\n", value, WEXITSTATUS(st));

    /* Killed by a signal while sleeping in pause(). */
    p = fork();
    if (p == 0) { pause(); _exit(0); }
    usleep(20000);
    kill(p, SIGTERM);
    waitpid(p, &st, 0);
    printf("signalled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));

    /* SIGKILL a busy child. */
    p = fork();
    if (p == 0) { for (volatile unsigned long n = 0;; n++) {} }
    kill(p, SIGKILL);
    waitpid(p, &st, 0);
    printf("busy child: signalled=%d sig=%d\n", WIFSIGNALED(st), WTERMSIG(st));

    /* WNOHANG while the child waits on a pipe, then the real wait. */
    int fds[2];
    if (pipe(fds) != 0) return 1;
    p = fork();
    if (p == 0) {
        char c = 0;
        close(fds[1]);
        if (read(fds[0], &c, 1) != 1) _exit(99);
        _exit(c);
    }
    close(fds[0]);
    printf("WNOHANG: %d\n", waitpid(p, &st, WNOHANG));
    if (write(fds[1], "\x05", 1) != 1) return 1;
    close(fds[1]);
    printf("then: reaped=%d code=%d\n", waitpid(p, &st, 0) == p, WEXITSTATUS(st));

    errno = 0;
    printf("no children: %d %s\n", waitpid(-1, &st, WNOHANG), strerror(errno));
    errno = 0;
    printf("wait(): %d %s\n", wait(&st), strerror(errno));

    /* Any child, in whatever order they end. */
    for (int i = 1; i <= 5; i++) if (fork() == 0) { usleep((6 - i) * 3000); _exit(i); }
    int sum = 0, n = 0;
    while ((p = wait(&st)) > 0) { sum += WEXITSTATUS(st); n++; }
    printf("waited %d children, codes sum %d, then %s\n", n, sum, strerror(errno));

    /* waitid. */
    p = fork();
    if (p == 0) _exit(9);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_PID, p, &si, WEXITED);
    printf("waitid: r=%d signo=%d code=%d status=%d pid-ok=%d\n", r, si.si_signo, si.si_code, si.si_status, si.si_pid == p);
    p = fork();
    if (p == 0) { raise(SIGUSR1); _exit(0); }
    memset(&si, 0, sizeof si);
    waitid(P_ALL, 0, &si, WEXITED);
    printf("waitid killed: code=%d status=%d\n", si.si_code, si.si_status);

    /* An orphan is reparented when its parent exits. */
    if (pipe(fds) != 0) return 1;
    p = fork();
    if (p == 0) {
        pid_t mid = getpid();
        if (fork() == 0) {
            for (int i = 0; i < 2000 && getppid() == mid; i++) usleep(1000);
            char c = getppid() != mid ? 'y' : 'n';
            if (write(fds[1], &c, 1) != 1) _exit(1);
            _exit(0);
        }
        _exit(0);
    }
    close(fds[1]);
    waitpid(p, &st, 0);
    char c = '?';
    if (read(fds[0], &c, 1) != 1) c = '!';
    close(fds[0]);
    printf("orphan reparented: %c\n", c);

    /* exit() in a child runs its atexit handlers. */
    p = fork();
    if (p == 0) { atexit(bye); exit(3); }
    waitpid(p, &st, 0);
    printf("exit code %d\n", WEXITSTATUS(st));

    /* Many sequential forks. */
    int ok = 0;
    for (int i = 0; i < 100; i++) {
        p = fork();
        if (p == 0) _exit(i & 0x7f);
        if (waitpid(p, &st, 0) == p && WEXITSTATUS(st) == (i & 0x7f)) ok++;
    }
    printf("100 forks: %d ok\n", ok);
    return 0;
}
