/* Sockets on loopback only: socketpair (stream, datagram, SCM_RIGHTS,
 * shutdown), AF_UNIX abstract listen/connect/accept across fork, TCP and
 * UDP on 127.0.0.1 with ephemeral ports (EADDRINUSE, ECONNREFUSED,
 * non-blocking accept and connect, poll, getsockname/getpeername), and
 * a blocking accept that a forked child satisfies. Prints results and
 * errno names; never port numbers, pids or addresses that vary. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <stddef.h>

#define CHECK(x) do { if ((x) < 0) { printf("FAIL %s: %s\n", #x, strerror(errno)); exit(1); } } while (0)

static const char *ename(int e) {
    switch (e) {
    case 0: return "0";
    case EAGAIN: return "EAGAIN";
    case EADDRINUSE: return "EADDRINUSE";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EINPROGRESS: return "EINPROGRESS";
    case ENOTCONN: return "ENOTCONN";
    case EPIPE: return "EPIPE";
    case EISCONN: return "EISCONN";
    case EINVAL: return "EINVAL";
    case ENOTSOCK: return "ENOTSOCK";
    default: return strerror(e);
    }
}
#define TRY(label, x) do { errno = 0; long r_ = (long)(x); printf("%s: %ld %s\n", label, r_ < 0 ? -1L : r_, r_ < 0 ? ename(errno) : "ok"); } while (0)

static void pairs(void) {
    int sv[2], pv[2];
    char buf[64];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    TRY("pair write", write(sv[0], "hello", 5));
    TRY("pair write2", write(sv[0], " world", 6));
    ssize_t n = read(sv[1], buf, sizeof buf);
    printf("pair read %zd '%.*s'\n", n, (int)n, buf);
    TRY("shutdown wr", shutdown(sv[0], SHUT_WR));
    TRY("read after peer shutdown", read(sv[1], buf, sizeof buf));
    TRY("write after shutdown", send(sv[0], "x", 1, MSG_NOSIGNAL));
    TRY("reverse write", write(sv[1], "back", 4));
    n = read(sv[0], buf, sizeof buf);
    printf("reverse read %zd '%.*s'\n", n, (int)n, buf);
    close(sv[1]);
    TRY("write to closed peer", send(sv[0], "x", 1, MSG_NOSIGNAL));
    close(sv[0]);

    /* Datagrams keep boundaries; MSG_TRUNC reports the real length. */
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    TRY("dgram send a", send(sv[0], "first", 5, 0));
    TRY("dgram send b", send(sv[0], "second message", 14, 0));
    n = recv(sv[1], buf, sizeof buf, 0);
    printf("dgram recv %zd '%.*s'\n", n, (int)n, buf);
    TRY("dgram trunc", recv(sv[1], buf, 3, MSG_TRUNC));
    TRY("dgram empty nonblock", recv(sv[1], buf, sizeof buf, MSG_DONTWAIT));
    close(sv[0]); close(sv[1]);

    /* SCM_RIGHTS: pass a pipe's read end, read through the received fd. */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK(pipe(pv));
    CHECK(write(pv[1], "via pipe", 8));
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = { .iov_base = "F", .iov_len = 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET; cm->cmsg_type = SCM_RIGHTS; cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &pv[0], sizeof(int));
    TRY("sendmsg rights", sendmsg(sv[0], &m, 0));
    close(pv[0]);
    char one;
    struct iovec riov = { .iov_base = &one, .iov_len = 1 };
    char rbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = rbuf, .msg_controllen = sizeof rbuf };
    TRY("recvmsg rights", recvmsg(sv[1], &rm, 0));
    struct cmsghdr *rc = CMSG_FIRSTHDR(&rm);
    if (rc && rc->cmsg_type == SCM_RIGHTS) {
        int got;
        memcpy(&got, CMSG_DATA(rc), sizeof got);
        n = read(got, buf, sizeof buf);
        printf("received fd reads %zd '%.*s'\n", n, (int)n, buf);
        close(got);
    } else {
        printf("no rights received\n");
    }
    close(pv[1]); close(sv[0]); close(sv[1]);
}

static void unix_abstract(void) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    int len = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "tsvm-sockets-test-%d", (int)getpid());
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(l);
    TRY("unix bind", bind(l, (struct sockaddr *)&a, alen));
    int dup = socket(AF_UNIX, SOCK_STREAM, 0);
    TRY("unix bind again", bind(dup, (struct sockaddr *)&a, alen));
    close(dup);
    TRY("unix listen", listen(l, 4));
    pid_t pid = fork();
    if (pid == 0) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&a, alen) < 0) _exit(2);
        if (write(c, "from child", 10) != 10) _exit(3);
        char b[16];
        ssize_t k = read(c, b, sizeof b);
        _exit(k == 4 && memcmp(b, "pong", 4) == 0 ? 0 : 4);
    }
    int s = accept(l, NULL, NULL);
    CHECK(s);
    char buf[32];
    ssize_t n = read(s, buf, sizeof buf);
    printf("unix accepted read %zd '%.*s'\n", n, (int)n, buf);
    TRY("unix reply", write(s, "pong", 4));
    int st;
    waitpid(pid, &st, 0);
    printf("unix child status %d\n", WEXITSTATUS(st));
    TRY("unix read eof", read(s, buf, sizeof buf));
    struct sockaddr_un got;
    socklen_t gl = sizeof got;
    CHECK(getsockname(l, (struct sockaddr *)&got, &gl));
    printf("unix getsockname len matches %d, name matches %d\n", gl == alen, memcmp(got.sun_path, a.sun_path, (size_t)len + 1) == 0);
    close(s); close(l);
    int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    TRY("unix connect after close", connect(c2, (struct sockaddr *)&a, alen));
    close(c2);
}

static unsigned short port_of(int fd) {
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    CHECK(getsockname(fd, (struct sockaddr *)&a, &l));
    return ntohs(a.sin_port);
}

static void tcp(void) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int l = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(l);
    int one = 1;
    TRY("SO_REUSEADDR", setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    TRY("tcp bind", bind(l, (struct sockaddr *)&a, sizeof a));
    a.sin_port = htons(port_of(l));
    printf("ephemeral port in range %d\n", ntohs(a.sin_port) >= 1024);
    int other = socket(AF_INET, SOCK_STREAM, 0);
    TRY("tcp bind in use", bind(other, (struct sockaddr *)&a, sizeof a));
    close(other);
    TRY("tcp listen", listen(l, 8));
    fcntl(l, F_SETFL, O_NONBLOCK);
    TRY("accept nothing", accept(l, NULL, NULL));
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    errno = 0;
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    printf("nonblocking connect: %s\n", r == 0 ? "0" : ename(errno));
    struct pollfd p[2] = { { .fd = l, .events = POLLIN }, { .fd = c, .events = POLLOUT } };
    int ready = poll(p, 2, 5000);
    printf("poll %d listen %s client %s\n", ready, (p[0].revents & POLLIN) ? "readable" : "-", (p[1].revents & POLLOUT) ? "writable" : "-");
    int err = -1;
    socklen_t el = sizeof err;
    CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el));
    printf("SO_ERROR %d\n", err);
    TRY("TCP_NODELAY", setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    CHECK(s);
    struct sockaddr_in cl, pe;
    socklen_t ll = sizeof cl, pl = sizeof pe;
    CHECK(getsockname(c, (struct sockaddr *)&cl, &ll));
    CHECK(getpeername(s, (struct sockaddr *)&pe, &pl));
    printf("peer matches client %d, addr %s\n", cl.sin_port == pe.sin_port && cl.sin_addr.s_addr == pe.sin_addr.s_addr, inet_ntoa(pe.sin_addr));
    TRY("tcp send", send(c, "GET / HTTP/1.0\r\n\r\n", 18, 0));
    char buf[64];
    struct pollfd ps = { .fd = s, .events = POLLIN };
    poll(&ps, 1, 5000);
    ssize_t n = recv(s, buf, sizeof buf, 0);
    printf("tcp recv %zd\n", n);
    close(c);
    poll(&ps, 1, 5000);
    TRY("tcp recv eof", recv(s, buf, sizeof buf, 0));
    close(s);
    close(l);
    int c3 = socket(AF_INET, SOCK_STREAM, 0);
    TRY("tcp connect refused", connect(c3, (struct sockaddr *)&a, sizeof a));
    close(c3);
}

static void tcp_fork(void) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int l = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a));
    CHECK(listen(l, 1));
    a.sin_port = htons(port_of(l));
    pid_t pid = fork();
    if (pid == 0) {
        usleep(20000);
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) _exit(2);
        static char big[600000]; /* more than the socket buffer: the writer blocks until the reader drains */
        memset(big, 'z', sizeof big);
        size_t done = 0;
        while (done < sizeof big) {
            ssize_t k = write(c, big + done, sizeof big - done);
            if (k <= 0) _exit(3);
            done += (size_t)k;
        }
        _exit(0);
    }
    int s = accept(l, NULL, NULL); /* blocks until the child connects */
    CHECK(s);
    size_t total = 0;
    char buf[4096];
    ssize_t n;
    while ((n = read(s, buf, sizeof buf)) > 0) total += (size_t)n;
    int st;
    waitpid(pid, &st, 0);
    printf("fork tcp: got %zu bytes, child status %d\n", total, WEXITSTATUS(st));
    close(s); close(l);
}

static void udp(void) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int r = socket(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(bind(r, (struct sockaddr *)&a, sizeof a));
    a.sin_port = htons(port_of(r));
    TRY("udp sendto", sendto(s, "datagram", 8, 0, (struct sockaddr *)&a, sizeof a));
    char buf[32];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(r, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    printf("udp recv %zd '%.*s' from sender %d\n", n, (int)n, buf, ntohs(from.sin_port) == port_of(s));
    TRY("udp empty", recv(r, buf, sizeof buf, MSG_DONTWAIT));
    close(r); close(s);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int fd = open("/dev/null", O_RDONLY);
    TRY("not a socket", listen(fd, 1));
    close(fd);
    pairs();
    unix_abstract();
    tcp();
    tcp_fork();
    udp();
    return 0;
}
