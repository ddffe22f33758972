/* execve: a forked child becomes a new image of this program (argv, envp,
 * close-on-exec fds, signal dispositions reset); execve errors (ENOENT,
 * EACCES, ENOEXEC); a #! script; vfork + exec; posix_spawn. Run as
 * `exec child ...` it is the exec'd side. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int child(int argc, char **argv) {
    printf("child: argc=%d argv0=%s", argc, argv[0]);
    for (int i = 2; i < argc; i++) printf(" [%s]", argv[i]);
    printf("\n");
    const char *v = getenv("MPTEST");
    printf("child: MPTEST=%s HOME=%s\n", v ? v : "(unset)", getenv("HOME") ? "set" : "unset");
    if (argc >= 4) {
        int cl = atoi(argv[2]), keep = atoi(argv[3]);
        errno = 0;
        int a = fcntl(cl, F_GETFD);
        printf("child: cloexec fd %s, kept fd %s\n", a < 0 && errno == EBADF ? "closed" : "open",
               fcntl(keep, F_GETFD) >= 0 ? "open" : "closed");
        struct sigaction sa;
        sigaction(SIGUSR1, NULL, &sa);
        printf("child: SIGUSR1 handler %s\n", sa.sa_handler == SIG_DFL ? "reset" : "kept");
        sigaction(SIGUSR2, NULL, &sa);
        printf("child: SIGUSR2 %s\n", sa.sa_handler == SIG_IGN ? "still ignored" : "not ignored");
    }
    fflush(stdout);
    return 42;
}

static void on_usr1(int sig) { (void)sig; }

static void try_exec(const char *what, const char *path) {
    pid_t p = fork();
    if (p == 0) {
        char *args[] = { (char *)path, NULL };
        execve(path, args, environ);
        printf("%s: execve failed: %s\n", what, strerror(errno));
        fflush(stdout);
        _exit(127);
    }
    int st;
    waitpid(p, &st, 0);
    printf("%s: exit %d\n", what, WEXITSTATUS(st));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "child") == 0) return child(argc, argv);

    int keep = open("/dev/null", O_RDONLY), cl = open("/dev/null", O_RDONLY | O_CLOEXEC);
    char a_cl[16], a_keep[16];
    snprintf(a_cl, sizeof a_cl, "%d", cl);
    snprintf(a_keep, sizeof a_keep, "%d", keep);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGUSR2, SIG_IGN);

    int st;
    pid_t p = fork();
    if (p == 0) {
        char *args[] = { "exec-child", "child", a_cl, a_keep, "two words", "", NULL };
        char *env[] = { "MPTEST=from parent", "HOME=/", NULL };
        execve("/proc/self/exe", args, env);
        _exit(127);
    }
    waitpid(p, &st, 0);
    printf("parent: child exited %d\n", WEXITSTATUS(st));

    try_exec("missing", "./no-such-program");
    int fd = open("exec-plain.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (write(fd, "\x7f" "ELF not really", 15) != 15) return 1;
    close(fd);
    try_exec("not executable", "./exec-plain.tmp");
    chmod("exec-plain.tmp", 0755);
    try_exec("garbage", "./exec-plain.tmp");
    try_exec("directory", ".");
    fd = open("exec-script.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    const char *script = "#!/bin/sh -e\necho \"script: $0 [$1]\"\nexit 6\n";
    if (write(fd, script, strlen(script)) != (ssize_t)strlen(script)) return 1;
    close(fd);
    p = fork();
    if (p == 0) {
        char *args[] = { "ignored", "arg1", NULL };
        execve("./exec-script.tmp", args, environ);
        _exit(127);
    }
    waitpid(p, &st, 0);
    printf("script exit %d\n", WEXITSTATUS(st));
    unlink("exec-script.tmp");
    unlink("exec-plain.tmp");

    /* vfork: the child borrows the parent's memory until it execs. */
    p = vfork();
    if (p == 0) {
        char *args[] = { "vfork-child", "child", NULL };
        execv("/proc/self/exe", args);
        _exit(127);
    }
    waitpid(p, &st, 0);
    printf("vfork+exec: exit %d\n", WEXITSTATUS(st));
    volatile int shared = 0;
    p = vfork();
    if (p == 0) { shared = 7; _exit(3); }
    waitpid(p, &st, 0);
    printf("vfork+_exit: exit %d, parent sees %d\n", WEXITSTATUS(st), shared);

    /* posix_spawn (CLONE_VM|CLONE_VFORK in glibc). */
    char *sargs[] = { "spawned", "child", "x", NULL };
    int r = posix_spawn(&p, "/proc/self/exe", NULL, NULL, sargs, environ);
    waitpid(p, &st, 0);
    printf("posix_spawn: r=%d exit %d\n", r, WEXITSTATUS(st));
    r = posix_spawn(&p, "./no-such-program", NULL, NULL, sargs, environ);
    printf("posix_spawn missing: %s\n", strerror(r));
    if (r == 0) waitpid(p, &st, 0);
    return 0;
}
