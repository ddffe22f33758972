/* Interval timers (setitimer(2), getitimer(2), alarm(3)): SIGALRM ends a
 * sleep with EINTR, or restarts nothing and lets the sleep report what was
 * left; an interval timer fires again and again while the process computes
 * (ITIMER_REAL, and ITIMER_VIRTUAL and ITIMER_PROF on CPU time); getitimer
 * reports what is left and the interval; a zero value disarms; a bad
 * `which` or a bad microsecond count fails with EINVAL; the old value comes
 * back; a child does not inherit its parent's timers; an unhandled SIGALRM
 * kills (the child's wait status says so). Only facts that do not depend on
 * timing are printed. */
#include "support/common.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t ticks[32];

static void on_tick(int sig) { ticks[sig]++; }

static void handle(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sigaction(sig, &sa, NULL);
}

static long usec(struct timeval tv) { return tv.tv_sec * 1000000L + tv.tv_usec; }

/* Spins until `sig` has been caught `n` times (bounded, so a missing timer fails instead of hanging). */
static int spin_until(int sig, int n) {
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 4000000000ul && ticks[sig] < n; i++) x += i;
    return ticks[sig] >= n;
}

int main(void) {
    struct itimerval v, old;

    /* Nothing armed: getitimer says zero. */
    memset(&v, 0xff, sizeof v);
    printf("getitimer idle: %d value=%ld interval=%ld\n", getitimer(ITIMER_REAL, &v), usec(v.it_value), usec(v.it_interval));

    /* Bad arguments. */
    memset(&v, 0, sizeof v);
    errno = 0;
    printf("setitimer which=7: %d errno=%d\n", setitimer(7, &v, NULL), errno);
    errno = 0;
    printf("getitimer which=-1: %d errno=%d\n", getitimer(-1, &v), errno);
    v.it_value.tv_usec = 1000000;
    errno = 0;
    printf("setitimer usec=1000000: %d errno=%d\n", setitimer(ITIMER_REAL, &v, NULL), errno);
    v.it_value.tv_usec = -1;
    errno = 0;
    printf("setitimer usec=-1: %d errno=%d\n", setitimer(ITIMER_REAL, &v, NULL), errno);

    /* Arm 10 s, read it back, replace it and get the old value, disarm. */
    memset(&v, 0, sizeof v);
    v.it_value.tv_sec = 10;
    v.it_interval.tv_usec = 250000;
    printf("arm 10s: %d\n", setitimer(ITIMER_REAL, &v, NULL));
    getitimer(ITIMER_REAL, &v);
    printf("left in (9s, 10s]: %d interval=%ld\n", usec(v.it_value) > 9000000 && usec(v.it_value) <= 10000000, usec(v.it_interval));
    memset(&v, 0, sizeof v);
    printf("disarm: %d\n", setitimer(ITIMER_REAL, &v, &old));
    printf("old left in (9s, 10s]: %d old interval=%ld\n", usec(old.it_value) > 9000000 && usec(old.it_value) <= 10000000, usec(old.it_interval));
    getitimer(ITIMER_REAL, &v);
    printf("after disarm: value=%ld interval=%ld\n", usec(v.it_value), usec(v.it_interval));

    /* SIGALRM with a handler ends nanosleep with EINTR and the time left. */
    handle(SIGALRM);
    alarm(1);
    struct timespec req = { 30, 0 }, rem = { 0, 0 };
    errno = 0;
    int r = nanosleep(&req, &rem);
    printf("nanosleep under alarm(1): %d errno=%d alarms=%d rem in (25s, 30s): %d\n", r, errno, (int)ticks[SIGALRM], rem.tv_sec >= 25 && rem.tv_sec < 30);
    printf("alarm(0) after it fired: %u\n", alarm(0));
    alarm(100);
    unsigned left = alarm(0);
    printf("alarm(0) returns what was left: %d\n", left >= 99 && left <= 100);

    /* A repeating ITIMER_REAL fires while the process computes. */
    memset(&v, 0, sizeof v);
    v.it_value.tv_usec = 20000;
    v.it_interval.tv_usec = 20000;
    ticks[SIGALRM] = 0;
    setitimer(ITIMER_REAL, &v, NULL);
    printf("ITIMER_REAL 3 ticks while computing: %d\n", spin_until(SIGALRM, 3));
    memset(&v, 0, sizeof v);
    setitimer(ITIMER_REAL, &v, NULL);

    /* ITIMER_VIRTUAL and ITIMER_PROF count the process's CPU time. */
    handle(SIGVTALRM);
    handle(SIGPROF);
    v.it_value.tv_usec = 10000;
    v.it_interval.tv_usec = 10000;
    setitimer(ITIMER_VIRTUAL, &v, NULL);
    printf("ITIMER_VIRTUAL 2 ticks: %d\n", spin_until(SIGVTALRM, 2));
    setitimer(ITIMER_PROF, &v, NULL);
    printf("ITIMER_PROF 2 ticks: %d\n", spin_until(SIGPROF, 2));
    memset(&v, 0, sizeof v);
    setitimer(ITIMER_VIRTUAL, &v, NULL);
    setitimer(ITIMER_PROF, &v, NULL);

    /* A child starts with no timers; an unhandled SIGALRM kills it. */
    v.it_value.tv_sec = 50;
    setitimer(ITIMER_REAL, &v, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct itimerval c;
        getitimer(ITIMER_REAL, &c);
        signal(SIGALRM, SIG_DFL);
        if (usec(c.it_value) != 0) _exit(3);
        alarm(1);
        for (;;) pause();
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    printf("child: signaled=%d sig=%d\n", WIFSIGNALED(ws), WIFSIGNALED(ws) ? WTERMSIG(ws) : -WEXITSTATUS(ws));
    memset(&v, 0, sizeof v);
    setitimer(ITIMER_REAL, &v, NULL);
    return 0;
}
