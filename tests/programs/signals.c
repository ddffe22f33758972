/* Signals: sigaction handlers with siginfo, raise/kill to self, blocked and
 * pending signals, sigsuspend-free delivery on unblock, SA_RESETHAND,
 * recovering from SIGSEGV (write to a read-only page) and SIGILL with
 * siglongjmp, sigaltstack, and a pipe read/write/poll within one process. */
#include "support/common.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t got[65];
static volatile int last_code;
static sigjmp_buf jb;
static volatile uintptr_t fault_off;
static char *page;

static void handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got[sig]++;
    last_code = si->si_code;
}

static void on_fault(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got[sig]++;
    fault_off = (uintptr_t)si->si_addr - (uintptr_t)page;
    siglongjmp(jb, sig);
}

static volatile int on_alt;
static void alt_handler(int sig) {
    char here;
    stack_t ss;
    sigaltstack(NULL, &ss);
    on_alt = (ss.ss_flags & SS_ONSTACK) != 0 && &here >= (char *)ss.ss_sp && &here < (char *)ss.ss_sp + ss.ss_size;
    got[sig]++;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR1);
    printf("raise SIGUSR1: count %d code-is-SI_TKILL %d\n", got[SIGUSR1], last_code == SI_TKILL);
    kill(getpid(), SIGUSR2);
    printf("kill SIGUSR2: count %d code-is-SI_USER %d\n", got[SIGUSR2], last_code == SI_USER);

    sigset_t set, old, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    raise(SIGUSR1);
    raise(SIGUSR1);
    sigpending(&pend);
    printf("blocked: delivered %d pending %d\n", got[SIGUSR1], sigismember(&pend, SIGUSR1));
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("unblocked: count %d (standard signals do not queue)\n", got[SIGUSR1]);

    /* real-time signals queue */
    sigaction(SIGRTMIN + 1, &sa, NULL);
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &set, &old);
    for (int i = 0; i < 3; i++) raise(SIGRTMIN + 1);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("rt signal delivered %d times\n", got[SIGRTMIN + 1]);

    /* SA_RESETHAND: second raise uses SIG_DFL, which for SIGURG is ignore */
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigaction(SIGURG, &sa, NULL);
    raise(SIGURG);
    raise(SIGURG);
    struct sigaction cur;
    sigaction(SIGURG, NULL, &cur);
    printf("SA_RESETHAND: count %d now default %d\n", got[SIGURG], cur.sa_handler == SIG_DFL);

    /* ignored signal */
    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR2);
    printf("ignored SIGUSR2 count still %d\n", got[SIGUSR2]);

    /* SIGSEGV from a write to a read-only page, recovered with siglongjmp */
    page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    page[0] = 1;
    mprotect(page, 4096, PROT_READ);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    int r = sigsetjmp(jb, 1);
    if (r == 0) { ((volatile char *)page)[123] = 5; printf("write did not fault\n"); }
    else printf("recovered from signal %d at page+%lu, page[0] %d\n", r, (unsigned long)fault_off, page[0]);
    page[4096 + 7] = 9;
    printf("second page writable: %d\n", page[4096 + 7]);
    r = sigsetjmp(jb, 1);
    if (r == 0) { __asm__ volatile(".word 0"); printf("no SIGILL\n"); }
    else printf("recovered from signal %d (illegal instruction)\n", r);
    r = sigsetjmp(jb, 1);
    if (r == 0) { munmap(page, 8192); ((volatile char *)page)[10] = 1; printf("no fault after munmap\n"); }
    else printf("recovered from signal %d after munmap, offset %lu\n", r, (unsigned long)fault_off);
    printf("faults counted: SEGV %d ILL %d\n", got[SIGSEGV], got[SIGILL]);

    /* sigaltstack */
    stack_t ss = {.ss_sp = malloc(65536), .ss_size = 65536, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = alt_handler;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGWINCH, &sa, NULL);
    raise(SIGWINCH);
    printf("sigaltstack handler ran %d on alternate stack %d\n", got[SIGWINCH], on_alt);

    /* pipe within one process */
    int p[2];
    if (pipe(p) != 0) { printf("pipe failed\n"); return 1; }
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    printf("poll empty pipe: %d\n", poll(&pf, 1, 0));
    ssize_t w = write(p[1], "through the pipe", 16);
    printf("poll after write: %d revents-in %d\n", poll(&pf, 1, 0), (pf.revents & POLLIN) != 0);
    char buf[32] = {0};
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    printf("pipe wrote %zd read %zd '%s'\n", w, n, buf);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    n = read(p[0], buf, 4);
    printf("nonblocking read on empty pipe: %zd %s\n", n, n < 0 && errno == EAGAIN ? "EAGAIN" : "unexpected");
    close(p[1]);
    n = read(p[0], buf, 4);
    printf("read after writer closed: %zd\n", n);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    if (pipe(p) != 0) return 1;
    close(p[0]);
    w = write(p[1], "x", 1);
    printf("write to pipe without reader: %zd %s\n", w, w < 0 && errno == EPIPE ? "EPIPE" : "unexpected");
    return 0;
}
