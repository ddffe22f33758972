/* Signals between processes: a child signals its parent waiting in
 * sigsuspend, SIGCHLD handlers, a read interrupted with EINTR or
 * restarted with SA_RESTART, kill to a process group, tgkill to a
 * thread, and process groups/sessions. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, usr2, chld;
static void on_usr1(int s) { (void)s; usr1++; }
static void on_usr2(int s) { (void)s; usr2++; }
static void on_chld(int s) { (void)s; chld++; }

static void handle(int sig, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

static int read_in_child(int flags) {
    int fds[2], ready[2], st;
    if (pipe(fds) || pipe(ready)) return -1;
    pid_t p = fork();
    if (p == 0) {
        handle(SIGUSR1, on_usr1, flags);
        close(fds[1]);
        close(ready[0]);
        char c = 0;
        if (write(ready[1], "r", 1) != 1) _exit(31); /* about to block in read */
        errno = 0;
        ssize_t r = read(fds[0], &c, 1);
        _exit(r == 1 ? (c == 'z' ? 10 : 11) : errno == EINTR ? 20 + usr1 : 30);
    }
    close(fds[0]);
    close(ready[1]);
    char rc;
    if (read(ready[0], &rc, 1) != 1) return -1;
    close(ready[0]);
    usleep(100000);
    kill(p, SIGUSR1);
    usleep(30000);
    signal(SIGPIPE, SIG_IGN); /* the interrupted child may be gone already */
    if (write(fds[1], "z", 1) != 1 && errno != EPIPE) return -1;
    signal(SIGPIPE, SIG_DFL);
    close(fds[1]);
    waitpid(p, &st, 0);
    return WEXITSTATUS(st);
}

static volatile sig_atomic_t thread_got;
static void on_thread(int s) { (void)s; thread_got = (int)syscall(SYS_gettid); }
static void *sleeper(void *arg) {
    *(long *)arg = syscall(SYS_gettid);
    while (!thread_got) usleep(1000);
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    handle(SIGUSR1, on_usr1, 0);
    pid_t parent = getpid(), p = fork();
    if (p == 0) { kill(parent, SIGUSR1); _exit(0); }
    while (!usr1) sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("parent got SIGUSR1 from child: %d\n", (int)usr1);
    waitpid(p, NULL, 0);

    handle(SIGCHLD, on_chld, SA_RESTART);
    p = fork();
    if (p == 0) _exit(0);
    int st;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR) {}
    usleep(10000);
    printf("SIGCHLD seen: %d\n", chld >= 1);
    handle(SIGCHLD, SIG_DFL, 0);

    printf("read interrupted: %d\n", read_in_child(0));
    printf("read restarted: %d\n", read_in_child(SA_RESTART));

    /* A process group of its own; kill(0, ...) reaches parent and child. */
    if (setpgid(0, 0) != 0) printf("setpgid failed: %s\n", strerror(errno));
    printf("own group: %d\n", getpgid(0) == getpid());
    handle(SIGUSR2, on_usr2, 0);
    int fds[2];
    if (pipe(fds)) return 1;
    p = fork();
    if (p == 0) {
        close(fds[0]);
        while (!usr2) usleep(1000);
        char c = 'k';
        if (write(fds[1], &c, 1) != 1) _exit(1);
        _exit(0);
    }
    close(fds[1]);
    usleep(20000);
    kill(0, SIGUSR2);
    char c = '?';
    if (read(fds[0], &c, 1) != 1) c = '!';
    waitpid(p, &st, 0);
    printf("group kill: parent %d child %c\n", (int)usr2, c);
    close(fds[0]);

    /* A child starts its own session; its group and session change. */
    p = fork();
    if (p == 0) {
        pid_t me = getpid();
        pid_t s = setsid();
        _exit(s == me && getsid(0) == me && getpgid(0) == me ? 1 : 2);
    }
    waitpid(p, &st, 0);
    printf("setsid in child: %d\n", WEXITSTATUS(st));
    errno = 0;
    printf("setsid as group leader: %d %s\n", setsid(), strerror(errno));
    errno = 0;
    printf("kill missing pid: %d %s\n", kill(999999, 0), strerror(errno));

    /* tgkill to one thread. */
    handle(SIGUSR1, on_thread, 0);
    long tid = 0;
    pthread_t t;
    pthread_create(&t, NULL, sleeper, &tid);
    while (!__atomic_load_n(&tid, __ATOMIC_SEQ_CST)) usleep(1000);
    syscall(SYS_tgkill, getpid(), tid, SIGUSR1);
    pthread_join(t, NULL);
    printf("tgkill reached the thread: %d\n", thread_got == tid);
    return 0;
}
