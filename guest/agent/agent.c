/*
 * tsvm guest agent: PID 1 of a container microVM's initrd.
 *
 * Mounts /proc, /sys, /dev (devtmpfs), /dev/pts and /tmp; loads the modules
 * listed in /etc/tsvm-agent/modules; sets the hostname from
 * `tsvm.hostname=NAME`; with `tsvm.root=virtiofs:TAG` mounts that virtiofs
 * file system and moves into it (MS_MOVE + chroot, as switch_root does);
 * with `tsvm.mounts=TAG:DIR[:ro],...` mounts those virtiofs file systems
 * in it (the container's volumes); with `tsvm.pids=N` puts every process it starts in one pids cgroup of at
 * most N tasks (Docker's --pids-limit); with `tsvm.ip=ADDR/PREFIX` sets that address on the NIC of a
 * container network (MAC 02:42 and the address's bytes) and with `tsvm.etc=TAG` binds that virtiofs
 * share's hosts and hostname over the root's; then serves the framed protocol of docs/vm-agent.md on /dev/hvc0.
 * Booted without `tsvm.root` (the host's spare VMs), it takes the container's root, hostname, pids limit
 * and volumes later, in a CONFIG frame.
 *
 * Built by src/host/vm-agent/initrd.ts: riscv64-linux-gnu-gcc -static -Os.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"

#define MAX_PROCS 64
#define OUT_CHUNK 16384
#define CHANNEL "/dev/hvc0"
/* Queued stdin (all processes) above which the agent stops reading the channel: backpressure to the host. */
#define STDIN_QUEUE_MAX (1u << 20)

extern char **environ;

struct proc {
  uint32_t id;      /* host-chosen id; 0 = free slot */
  pid_t pid;
  int tty;          /* 1: pty master in out_fd (also stdin) */
  int main;         /* its exit powers the VM off */
  int in_fd;        /* stdin pipe write end (or pty master) */
  int out_fd;       /* stdout pipe read end, or the pty master */
  int err_fd;       /* stderr pipe read end (-1 with a tty) */
  int out_open, err_open;
  uint8_t *inq;     /* stdin bytes the process has not taken yet */
  size_t inq_len;
  int in_close;     /* close stdin once inq is empty */
};

static struct proc procs[MAX_PROCS];
static int chan = -1;
static uint8_t rbuf[FRAME_HEADER + FRAME_MAX_PAYLOAD];
static size_t rlen;
static uint8_t obuf[OUT_CHUNK];
static int got_host_frame;
static size_t stdin_queued;

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("tsvm-agent: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void wr32(uint8_t *p, uint32_t v) { p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }

/* Writes one whole frame to the channel (blocking; partial writes resumed). */
static void send_frame(uint16_t type, uint32_t id, const void *data, uint32_t len) {
  uint8_t h[FRAME_HEADER];
  wr16(h, type); wr16(h + 2, 0); wr32(h + 4, id); wr32(h + 8, len);
  struct iovec iov[2] = { { h, FRAME_HEADER }, { (void *)data, len } };
  int n = len ? 2 : 1;
  while (n > 0) {
    ssize_t w = writev(chan, iov, n);
    if (w < 0) { if (errno == EINTR || errno == EAGAIN) continue; logmsg("channel write: %s", strerror(errno)); return; }
    /* advance the iovecs */
    size_t left = (size_t)w;
    while (n > 0 && left >= iov[0].iov_len) { left -= iov[0].iov_len; iov[0] = iov[1]; iov[1].iov_len = 0; n--; }
    if (n > 0) { iov[0].iov_base = (uint8_t *)iov[0].iov_base + left; iov[0].iov_len -= left; }
  }
}

static void send_u32(uint16_t type, uint32_t id, uint32_t v) { uint8_t b[4]; wr32(b, v); send_frame(type, id, b, 4); }

static void send_error(uint32_t id, const char *msg) { send_frame(F_ERROR, id, msg, (uint32_t)strlen(msg)); }

static uint32_t uptime_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return (uint32_t)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* READY; `id` echoes the HELLO or CONFIG it answers (0: unprompted). */
static void send_ready(uint32_t id) {
  uint8_t b[8 + 256];
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  size_t hl = strlen(host);
  wr32(b, AGENT_VERSION); wr32(b + 4, uptime_ms());
  memcpy(b + 8, host, hl);
  send_frame(F_READY, id, b, (uint32_t)(8 + hl));
}

/* ---- boot ---- */

static void mount_or_log(const char *src, const char *dst, const char *type, unsigned long fl, const char *data) {
  mkdir(dst, 0755);
  if (mount(src, dst, type, fl, data) < 0 && errno != EBUSY) logmsg("mount %s on %s: %s", type, dst, strerror(errno));
}

/* The pseudo file systems under `root` ("" for /). */
static void mount_pseudo(const char *root) {
  char p[256];
  snprintf(p, sizeof p, "%s/proc", root); mount_or_log("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  snprintf(p, sizeof p, "%s/sys", root); mount_or_log("sysfs", p, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  snprintf(p, sizeof p, "%s/dev", root); mount_or_log("devtmpfs", p, "devtmpfs", MS_NOSUID, "mode=0755");
  snprintf(p, sizeof p, "%s/dev/pts", root); mount_or_log("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666");
  snprintf(p, sizeof p, "%s/tmp", root); mount_or_log("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
}

static const char *want_module;
static char found_module[512];

static int norm_eq(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char x = a[i] == '-' ? '_' : a[i], y = b[i] == '-' ? '_' : b[i];
    if (x != y) return 0;
  }
  return 1;
}

static int find_ko(const char *path, const struct stat *st, int type, struct FTW *f) {
  (void)st;
  if (type != FTW_F) return 0;
  const char *base = path + f->base;
  size_t n = strlen(want_module);
  if (strlen(base) == n + 3 && norm_eq(base, want_module, n) && strcmp(base + n, ".ko") == 0) {
    snprintf(found_module, sizeof found_module, "%s", path);
    return 1;
  }
  return 0;
}

/* Loads each module named in /etc/tsvm-agent/modules (dependencies first). */
static void load_modules(void) {
  FILE *f = fopen("/etc/tsvm-agent/modules", "r");
  if (!f) return;
  struct utsname u;
  uname(&u);
  char dir[300], line[128];
  snprintf(dir, sizeof dir, "/lib/modules/%s", u.release);
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    want_module = line; found_module[0] = 0;
    nftw(dir, find_ko, 16, FTW_PHYS);
    if (!found_module[0]) { logmsg("module %s: not in the initrd", line); continue; }
    int fd = open(found_module, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)) logmsg("module %s: %s", line, strerror(errno));
    if (fd >= 0) close(fd);
  }
  fclose(f);
}

/* The value of `key=` on the kernel command line, or NULL. */
static char cmdline[4096];
static const char *kernel_arg(const char *key) {
  size_t kl = strlen(key);
  for (char *p = cmdline; *p; ) {
    while (*p == ' ') p++;
    char *end = p + strcspn(p, " \n");
    if ((size_t)(end - p) > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
      static char val[256];
      size_t n = (size_t)(end - p) - kl - 1;
      if (n >= sizeof val) n = sizeof val - 1;
      memcpy(val, p + kl + 1, n); val[n] = 0;
      return val;
    }
    p = *end ? end + 1 : end;
  }
  return NULL;
}

static void read_cmdline(void) {
  int fd = open("/proc/cmdline", O_RDONLY);
  if (fd < 0) return;
  ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
  cmdline[n > 0 ? n : 0] = 0;
  close(fd);
}

/* Runs argv (the initrd's busybox) and waits for it; returns its wait status, or -1. */
static int run_wait(char *const argv[]) {
  pid_t pid = fork();
  if (pid == 0) { execv(argv[0], argv); _exit(127); }
  if (pid < 0) return -1;
  int status;
  while (waitpid(pid, &status, 0) < 0) if (errno != EINTR) return -1;
  return status;
}

/* The interface whose MAC address is `mac` (lower-case aa:bb:...), from /sys/class/net; 0 with its name in `out`, else -1. */
static int iface_by_mac(const char *mac, char *out, size_t n) {
  DIR *d = opendir("/sys/class/net");
  if (d == NULL) return -1;
  struct dirent *e;
  int found = -1;
  while (found < 0 && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], addr[32] = "";
    snprintf(path, sizeof path, "/sys/class/net/%s/address", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t k = read(fd, addr, sizeof addr - 1);
    close(fd);
    addr[k > 0 ? k : 0] = 0;
    addr[strcspn(addr, "\n")] = 0;
    if (strcmp(addr, mac) == 0) { snprintf(out, n, "%s", e->d_name); found = 0; }
  }
  closedir(d);
  return found;
}

/* tsvm.net=dhcp: loopback up, then the user network's NIC (eth0, or eth1 when eth0 is the container
   network's) configured by the initrd's busybox udhcpc (its script writes the routes and /etc/resolv.conf).
   tsvm.ip=ADDR/PREFIX: the container network's NIC, found by its MAC (02:42 and ADDR's four bytes, as
   Docker makes them), gets ADDR; the subnet's route comes with it. Both before the switch to the
   container's root. */
static void setup_net(const char *spec, const char *cidr) {
  char *lo[] = { "/bin/busybox", "ip", "link", "set", "lo", "up", NULL };
  run_wait(lo);
  char nif[300] = "";
  if (cidr != NULL) {
    unsigned a, b, c, d, prefix;
    char mac[32];
    if (sscanf(cidr, "%u.%u.%u.%u/%u", &a, &b, &c, &d, &prefix) != 5 || a > 255 || b > 255 || c > 255 || d > 255 || prefix > 32) {
      logmsg("tsvm.ip=%s: expected ADDR/PREFIX", cidr);
    } else {
      snprintf(mac, sizeof mac, "02:42:%02x:%02x:%02x:%02x", a, b, c, d);
      if (iface_by_mac(mac, nif, sizeof nif) < 0) { logmsg("tsvm.ip: no interface has MAC %s", mac); nif[0] = 0; } else {
        char addr[32];
        snprintf(addr, sizeof addr, "%u.%u.%u.%u/%u", a, b, c, d, prefix);
        char *up[] = { "/bin/busybox", "ip", "link", "set", nif, "up", NULL };
        char *add[] = { "/bin/busybox", "ip", "addr", "add", addr, "dev", nif, NULL };
        if (run_wait(up) != 0 || run_wait(add) != 0) logmsg("tsvm.ip: setting %s on %s failed", addr, nif);
      }
    }
  }
  if (spec == NULL) return;
  if (strcmp(spec, "dhcp") != 0) { logmsg("tsvm.net=%s: only dhcp is supported", spec); return; }
  char *dev = strcmp(nif, "eth0") == 0 ? "eth1" : "eth0";
  char *dhcp[] = { "/bin/busybox", "udhcpc", "-i", dev, "-q", "-n", "-f", "-t", "5", "-T", "1", NULL };
  int st = run_wait(dhcp);
  if (st != 0) logmsg("udhcpc on %s failed (status %d): no network", dev, st);
}

/* Binds file `from` over `to` (made empty if missing, as Docker makes the mount point of a bound file). */
static void bind_file(const char *from, const char *to) {
  int fd = open(to, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) close(fd);
  if (mount(from, to, NULL, MS_BIND, NULL) < 0) logmsg("bind %s on %s: %s", from, to, strerror(errno));
}

static void power_off(void) {
  sync();
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

/* mkdir -p of `path` (mode 0755); 0, or -1 with errno set. */
static int mkdir_p(const char *path) {
  char p[512];
  if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) { errno = ENAMETOOLONG; return -1; }
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(p, 0755) < 0 && errno != EEXIST) return -1;
    *s = '/';
  }
  return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* tsvm.mounts=TAG:DIR[:ro],...: the container's volumes (Docker's -v), each a virtiofs file system mounted
   on DIR of the new root (made if missing, as Docker makes mount points), read-only with :ro. A volume
   that cannot be mounted powers the VM off: the container must not run with its writes going elsewhere. */
static void mount_volumes(const char *spec) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", spec);
  char *save = NULL;
  for (char *tag = strtok_r(buf, ",", &save); tag; tag = strtok_r(NULL, ",", &save)) {
    char *dir = strchr(tag, ':');
    if (dir == NULL) { logmsg("tsvm.mounts: '%s': expected TAG:DIR[:ro]", tag); power_off(); }
    *dir++ = 0;
    char *mode = strchr(dir, ':');
    int ro = 0;
    if (mode != NULL) { *mode++ = 0; ro = strcmp(mode, "ro") == 0; }
    char path[512];
    snprintf(path, sizeof path, "/newroot%s", dir);
    if (mkdir_p(path) < 0 || mount(tag, path, "virtiofs", ro ? MS_RDONLY : 0, NULL) < 0) {
      logmsg("volume %s: mount virtiofs %s on %s: %s", dir, tag, dir, strerror(errno));
      power_off();
    }
  }
}

/* tsvm.root=virtiofs:TAG: mount it on /newroot and make it the root; 0, or -1 (logged) when the root is unchanged. */
static int switch_root(const char *spec) {
  if (strncmp(spec, "virtiofs:", 9) != 0) { logmsg("tsvm.root=%s: only virtiofs:TAG is supported", spec); return -1; }
  mkdir("/newroot", 0755);
  if (mount(spec + 9, "/newroot", "virtiofs", 0, NULL) < 0) { logmsg("mount virtiofs %s: %s", spec + 9, strerror(errno)); return -1; }
  mount_pseudo("/newroot");
  const char *vols = kernel_arg("tsvm.mounts");
  if (vols) mount_volumes(vols);
  /* The network's resolver (written by udhcpc) over the image's, as Docker bind-mounts its resolv.conf
     (an image without one gets an empty mount point in its writable layer); on a container network,
     the host's hosts and hostname files (tsvm.etc), which it rewrites as members come and go. */
  struct stat st;
  if (stat("/newroot/etc", &st) == 0 && S_ISDIR(st.st_mode)) {
    if (stat("/etc/resolv.conf", &st) == 0) bind_file("/etc/resolv.conf", "/newroot/etc/resolv.conf");
    const char *etc = kernel_arg("tsvm.etc");
    if (etc != NULL) {
      mkdir("/etc-share", 0755);
      if (mount(etc, "/etc-share", "virtiofs", MS_RDONLY, NULL) < 0) logmsg("mount virtiofs %s: %s", etc, strerror(errno)); else {
        bind_file("/etc-share/hosts", "/newroot/etc/hosts");
        bind_file("/etc-share/hostname", "/newroot/etc/hostname");
      }
    }
  }
  if (chdir("/newroot") < 0 || mount("/newroot", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0) {
    logmsg("switching to the virtiofs root: %s", strerror(errno));
    return -1;
  }
  return 0;
}

/* Writes `v` to the file `path` (a cgroup control file); 0, or -1 with errno set. */
static int write_file(const char *path, const char *v) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, v, strlen(v));
  int e = errno;
  close(fd);
  if (n < 0) { errno = e; return -1; }
  return 0;
}

/* The container's pids cgroup (cgroup v2, the kernel's Documentation/admin-guide/cgroup-v2.rst, "PID"). */
#define PIDS_CGROUP "/sys/fs/cgroup/container"
static int pids_limited;

/* tsvm.pids=N: a cgroup whose pids.max is N; start() puts every process it starts in it, so a fork past
   N tasks in the container fails with EAGAIN, as under Docker's --pids-limit. */
static void setup_pids(const char *spec) {
  char *end;
  long n = strtol(spec, &end, 10);
  if (*end != 0 || n <= 0) { logmsg("tsvm.pids=%s: not a positive number", spec); return; }
  if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 && errno != EBUSY) {
    logmsg("mount cgroup2: %s", strerror(errno)); return;
  }
  char v[32];
  snprintf(v, sizeof v, "%ld", n);
  if (write_file("/sys/fs/cgroup/cgroup.subtree_control", "+pids") < 0 || (mkdir(PIDS_CGROUP, 0755) < 0 && errno != EEXIST) ||
      write_file(PIDS_CGROUP "/pids.max", v) < 0) {
    logmsg("the pids cgroup: %s", strerror(errno)); return;
  }
  pids_limited = 1;
}


/* ---- processes ---- */

static struct proc *find_proc(uint32_t id) {
  for (int i = 0; i < MAX_PROCS; i++) if (procs[i].id == id && id != 0) return &procs[i];
  return NULL;
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* Parses a START payload and starts the process. */
static void start_proc(uint32_t id, const uint8_t *p, uint32_t len) {
  if (id == 0 || find_proc(id)) { send_error(id, "start: id 0 or already in use"); return; }
  if (len < START_FIXED) { send_error(id, "start: short record"); return; }
  uint32_t flags = rd32(p), uid = rd32(p + 4), gid = rd32(p + 8);
  struct winsize ws = { .ws_row = rd16(p + 12), .ws_col = rd16(p + 14) };
  uint32_t argc = rd32(p + 16), envc = rd32(p + 20);
  /* cwd, argv[argc], env[envc]: NUL-terminated strings */
  uint32_t nstr = 1 + argc + envc;
  if (argc == 0 || argc > 65536 || envc > 65536) { send_error(id, "start: bad argc/envc"); return; }
  char **strs = calloc(nstr + 2, sizeof(char *));
  if (!strs) { send_error(id, "start: out of memory"); return; }
  uint32_t off = START_FIXED;
  for (uint32_t i = 0; i < nstr; i++) {
    const uint8_t *z = off < len ? memchr(p + off, 0, len - off) : NULL;
    if (!z) { free(strs); send_error(id, "start: strings not NUL-terminated"); return; }
    strs[i] = (char *)(p + off);
    off = (uint32_t)(z - p) + 1;
  }
  struct proc *pr = NULL;
  for (int i = 0; i < MAX_PROCS; i++) if (procs[i].id == 0) { pr = &procs[i]; break; }
  if (!pr) { free(strs); send_error(id, "start: too many processes"); return; }
  char *cwd = strs[0];
  char **argv = malloc((argc + 1) * sizeof(char *));
  char **envp = malloc((envc + 1) * sizeof(char *));
  if (!argv || !envp) { free(strs); free(argv); free(envp); send_error(id, "start: out of memory"); return; }
  for (uint32_t i = 0; i < argc; i++) argv[i] = strs[1 + i];
  argv[argc] = NULL;
  for (uint32_t i = 0; i < envc; i++) envp[i] = strs[1 + argc + i];
  envp[envc] = NULL;

  int tty = (flags & START_TTY) != 0;
  int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, master = -1;
  char slave[128] = "";
  if (tty) {
    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, slave, sizeof slave) != 0) {
      char m[160]; snprintf(m, sizeof m, "start: pty: %s", strerror(errno)); send_error(id, m);
      if (master >= 0) close(master);
      free(strs); free(argv); free(envp); return;
    }
    if (ws.ws_row && ws.ws_col) ioctl(master, TIOCSWINSZ, &ws);
  } else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
    send_error(id, "start: pipe failed");
    free(strs); free(argv); free(envp); return;
  }
  /* The container's PID namespace (pid_namespaces(7)): the agent's next child is its init, PID 1,
     and every later child (exec) joins it, as in a Docker or Kata container. */
  int pidns = (flags & START_MAIN) && (flags & START_PIDNS);
  if (pidns && unshare(CLONE_NEWPID) < 0) {
    char m[160]; snprintf(m, sizeof m, "start: new PID namespace: %s", strerror(errno)); send_error(id, m);
    if (tty) close(master); else { close(in[0]); close(in[1]); close(out[0]); close(out[1]); close(err[0]); close(err[1]); }
    free(strs); free(argv); free(envp); return;
  }
  pid_t pid = fork();
  if (pid == 0) {
    sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
    if (pids_limited && write_file(PIDS_CGROUP "/cgroup.procs", "0") < 0) { dprintf(2, "tsvm-agent: joining the pids cgroup: %s\n", strerror(errno)); _exit(126); }
    setsid();
    if (pidns) {
      /* A /proc of the new namespace, so ps inside sees only the container's processes. */
      umount2("/proc", MNT_DETACH);
      mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    }
    if (tty) {
      int s = open(slave, O_RDWR);
      if (s < 0) _exit(126);
      ioctl(s, TIOCSCTTY, 0);
      dup2(s, 0); dup2(s, 1); dup2(s, 2);
      if (s > 2) close(s);
    } else {
      dup2(in[0], 0); dup2(out[1], 1); dup2(err[1], 2);
    }
    if (gid != 0 || uid != 0) {
      if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) { dprintf(2, "tsvm-agent: setuid %u:%u: %s\n", uid, gid, strerror(errno)); _exit(126); }
    }
    if (cwd[0] && chdir(cwd) < 0) { dprintf(2, "tsvm-agent: chdir %s: %s\n", cwd, strerror(errno)); _exit(126); }
    environ = envp;
    execvp(argv[0], argv);
    int e = errno;
    dprintf(2, "tsvm-agent: exec %s: %s\n", argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  free(strs); free(argv); free(envp);
  if (pid < 0) {
    send_error(id, "start: fork failed");
    if (tty) close(master); else { close(in[0]); close(in[1]); close(out[0]); close(out[1]); close(err[0]); close(err[1]); }
    return;
  }
  memset(pr, 0, sizeof *pr);
  pr->id = id; pr->pid = pid; pr->tty = tty; pr->main = (flags & START_MAIN) != 0;
  if (tty) {
    pr->in_fd = master; pr->out_fd = master; pr->err_fd = -1; pr->out_open = 1; pr->err_open = 0;
    set_nonblock(master);
  } else {
    close(in[0]); close(out[1]); close(err[1]);
    set_nonblock(in[1]);
    pr->in_fd = in[1]; pr->out_fd = out[0]; pr->err_fd = err[0]; pr->out_open = 1; pr->err_open = 1;
    set_nonblock(out[0]); set_nonblock(err[0]);
  }
  send_u32(F_STARTED, id, (uint32_t)pid);
}

/* Reads what fd has now and forwards it; returns 0 at EOF/EIO (the fd is done). */
static int pump(struct proc *pr, int fd, uint16_t type) {
  for (;;) {
    ssize_t n = read(fd, obuf, sizeof obuf);
    if (n > 0) { send_frame(type, pr->id, obuf, (uint32_t)n); continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 1;
    return 0; /* EOF, or EIO: the pty's slave side is closed */
  }
}

/* Writes what the process's stdin takes now; keeps the rest queued. SIGPIPE is blocked: EPIPE drops the queue. */
static void flush_stdin(struct proc *pr) {
  size_t off = 0;
  while (off < pr->inq_len && pr->in_fd >= 0) {
    ssize_t w = write(pr->in_fd, pr->inq + off, pr->inq_len - off);
    if (w > 0) { off += (size_t)w; continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) break;
    off = pr->inq_len; /* EPIPE, EIO: nobody reads it any more */
  }
  memmove(pr->inq, pr->inq + off, pr->inq_len - off);
  pr->inq_len -= off;
  stdin_queued -= off;
  if (pr->inq_len == 0 && pr->in_close && pr->in_fd >= 0 && !pr->tty) { close(pr->in_fd); pr->in_fd = -1; }
}

static void queue_stdin(struct proc *pr, const uint8_t *p, uint32_t n) {
  uint8_t *q = realloc(pr->inq, pr->inq_len + n);
  if (!q) { send_error(pr->id, "stdin: out of memory; input dropped"); return; }
  memcpy(q + pr->inq_len, p, n);
  pr->inq = q; pr->inq_len += n; stdin_queued += n;
  flush_stdin(pr);
}

static void finish(struct proc *pr, int status) {
  if (pr->out_open) pump(pr, pr->out_fd, F_STDOUT);
  if (pr->err_open) pump(pr, pr->err_fd, F_STDERR);
  uint32_t code = WIFEXITED(status) ? (uint32_t)WEXITSTATUS(status) : WIFSIGNALED(status) ? 128u + (uint32_t)WTERMSIG(status) : 255u;
  send_u32(F_EXIT, pr->id, code);
  if (pr->tty) close(pr->out_fd);
  else {
    if (pr->in_fd >= 0) close(pr->in_fd);
    close(pr->out_fd); close(pr->err_fd);
  }
  stdin_queued -= pr->inq_len;
  free(pr->inq);
  int was_main = pr->main;
  memset(pr, 0, sizeof *pr);
  if (was_main) {
    /* Docker semantics: the container lives as long as its main command. */
    kill(-1, SIGKILL);
    power_off();
  }
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (int i = 0; i < MAX_PROCS; i++) {
      if (procs[i].id != 0 && procs[i].pid == pid) { finish(&procs[i], status); break; }
    }
  }
}

/* Whether the container's root is in place (booted with tsvm.root, or a CONFIG frame applied). */
static int configured;

/* The container's part of the arguments in `cmdline`: tsvm.root, tsvm.hostname, tsvm.pids; 0, or -1 when
   the root could not be switched to. */
static int configure(void) {
  int r = 0;
  const char *root = kernel_arg("tsvm.root");
  if (root) r = switch_root(root);
  const char *host = kernel_arg("tsvm.hostname");
  if (host && sethostname(host, strlen(host)) < 0) logmsg("sethostname: %s", strerror(errno));
  const char *pids = kernel_arg("tsvm.pids");
  if (pids) setup_pids(pids);
  return r;
}

/* F_CONFIG: a spare VM, booted without tsvm.root, becomes a container. The payload holds the container's
   tsvm.root, tsvm.hostname, tsvm.pids and tsvm.mounts in the kernel command line's syntax; they replace
   the boot's arguments (whose network part is done). Answered with READY (the new hostname), or ERROR,
   with the frame's id. Once only, and only as PID 1. */
static void late_config(uint32_t id, const uint8_t *p, uint32_t len) {
  if (configured || getpid() != 1) { send_error(id, "config: this agent's container is already set up"); return; }
  if (len >= sizeof cmdline) { send_error(id, "config: the arguments are too long"); return; }
  memcpy(cmdline, p, len);
  cmdline[len] = 0;
  if (memchr(cmdline, 0, len) != NULL) { send_error(id, "config: a NUL in the arguments"); return; }
  if (!kernel_arg("tsvm.root")) { send_error(id, "config: tsvm.root= is missing"); return; }
  configured = 1;
  if (configure() < 0) { send_error(id, "config: the container's root could not be mounted (see the console)"); return; }
  send_ready(id);
}

static void handle_frame(uint16_t type, uint32_t id, const uint8_t *p, uint32_t len) {
  got_host_frame = 1;
  struct proc *pr = find_proc(id);
  switch (type) {
    case F_HELLO: send_ready(id); break;
    case F_START: start_proc(id, p, len); break;
    case F_STDIN:
      if (!pr) break;
      if (len == 0) { pr->in_close = 1; flush_stdin(pr); }
      else if (pr->in_fd >= 0 && !pr->in_close) queue_stdin(pr, p, len);
      break;
    case F_RESIZE:
      if (pr && pr->tty && len >= 4) {
        struct winsize ws = { .ws_row = rd16(p), .ws_col = rd16(p + 2) };
        ioctl(pr->out_fd, TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH to the foreground group */
      }
      break;
    case F_SIGNAL:
      if (pr && len >= 4) {
        int sig = (int)rd32(p);
        if (kill(pr->tty ? -pr->pid : pr->pid, sig) < 0 && pr->tty) kill(pr->pid, sig);
      }
      break;
    case F_SHUTDOWN: power_off(); break;
    case F_CONFIG: late_config(id, p, len); break;
    default: { char m[64]; snprintf(m, sizeof m, "unknown frame type 0x%x", type); send_error(id, m); }
  }
}

/* Parses the complete frames in rbuf. */
static void parse_input(void) {
  size_t off = 0;
  while (rlen - off >= FRAME_HEADER) {
    const uint8_t *h = rbuf + off;
    uint32_t len = rd32(h + 8);
    if (len > FRAME_MAX_PAYLOAD || rd16(h + 2) != 0) {
      send_error(0, "bad frame header from the host; input discarded");
      rlen = 0;
      return;
    }
    if (rlen - off < FRAME_HEADER + len) break;
    handle_frame(rd16(h), rd32(h + 4), h + FRAME_HEADER, len);
    off += FRAME_HEADER + len;
  }
  memmove(rbuf, rbuf + off, rlen - off);
  rlen -= off;
}

int main(void) {
  if (getpid() == 1) {
    mount_pseudo("");
    read_cmdline();
    load_modules();
    char net[32] = "", ip[64] = "";
    const char *v = kernel_arg("tsvm.net");
    if (v) snprintf(net, sizeof net, "%s", v);
    v = kernel_arg("tsvm.ip");
    if (v) snprintf(ip, sizeof ip, "%s", v);
    if (net[0] || ip[0]) setup_net(net[0] ? net : NULL, ip[0] ? ip : NULL);
    if (kernel_arg("tsvm.root")) configured = 1;
    configure();
  } else {
    read_cmdline();
  }
  setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
  for (int i = 0; i < 500 && (chan = open(CHANNEL, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0; i++) usleep(10000);
  if (chan < 0) { logmsg("%s: %s (is there a virtio-console device?)", CHANNEL, strerror(errno)); power_off(); }
  struct termios t;
  if (tcgetattr(chan, &t) == 0) { cfmakeraw(&t); tcsetattr(chan, TCSANOW, &t); }
  tcflush(chan, TCIFLUSH);

  sigset_t mask;
  sigemptyset(&mask); sigaddset(&mask, SIGCHLD); sigaddset(&mask, SIGPIPE);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  sigemptyset(&mask); sigaddset(&mask, SIGCHLD);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  send_ready(0);
  struct pollfd fds[2 + 3 * MAX_PROCS];
  struct proc *owner[2 + 3 * MAX_PROCS];
  uint16_t kind[2 + 3 * MAX_PROCS];
  for (;;) {
    int n = 0;
    fds[n++] = (struct pollfd){ chan, stdin_queued < STDIN_QUEUE_MAX ? POLLIN : 0, 0 };
    fds[n++] = (struct pollfd){ sfd, POLLIN, 0 };
    for (int i = 0; i < MAX_PROCS; i++) {
      struct proc *pr = &procs[i];
      if (!pr->id) continue;
      if (pr->out_open) { owner[n] = pr; kind[n] = F_STDOUT; fds[n++] = (struct pollfd){ pr->out_fd, POLLIN, 0 }; }
      if (pr->err_open) { owner[n] = pr; kind[n] = F_STDERR; fds[n++] = (struct pollfd){ pr->err_fd, POLLIN, 0 }; }
      if (pr->inq_len && pr->in_fd >= 0) { owner[n] = pr; kind[n] = F_STDIN; fds[n++] = (struct pollfd){ pr->in_fd, POLLOUT, 0 }; }
    }
    /* Until the host has spoken, repeat READY: bytes sent before a client connected were dropped. */
    int r = poll(fds, (nfds_t)n, got_host_frame ? -1 : 500);
    if (r < 0) continue;
    if (r == 0) { send_ready(0); continue; }
    for (int i = 2; i < n; i++) {
      if (!fds[i].revents) continue;
      struct proc *pr = owner[i];
      if (!pr->id) continue;
      if (kind[i] == F_STDIN) { flush_stdin(pr); continue; }
      if (!pump(pr, fds[i].fd, kind[i])) { if (kind[i] == F_STDOUT) pr->out_open = 0; else pr->err_open = 0; }
    }
    if (fds[1].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {}
      reap();
    }
    if (fds[0].revents & POLLIN) {
      ssize_t k = read(chan, rbuf + rlen, sizeof rbuf - rlen);
      if (k > 0) { rlen += (size_t)k; parse_input(); }
    }
  }
}
