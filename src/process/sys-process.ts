/**
 * Process-level syscalls: exit, identity (ids, groups, process groups and
 * sessions), uname, sysinfo, resource limits and usage, scheduling, thread
 * bookkeeping (set_tid_address, robust lists), prctl, getcpu and
 * riscv_hwprobe. The process table itself lives in kernel.ts; futex in
 * sys-futex.ts.
 */
import type { SysCtx, SysArgs, SyscallDef } from './sys-context.js';
import { E, u32, u64, encodeTimeval } from './sys-abi.js';

/** struct new_utsname field length (include/uapi/linux/utsname.h). */
const UTS_LEN = 65;

function uname(c: SysCtx, a: SysArgs): number {
  const u = c.host.uname(), b = new Uint8Array(UTS_LEN * 6), enc = new TextEncoder();
  // Like qemu-user: the host's node name, release and version; the guest's machine.
  const fields = ['Linux', u.nodename, u.release, u.version, 'riscv64', '(none)'];
  fields.forEach((s, i) => b.set(enc.encode(s).subarray(0, UTS_LEN - 1), i * UTS_LEN));
  return c.write(a.u(0), b) ? 0 : -E.EFAULT;
}

/** sethostname(2): a container's own name (its UTS namespace); elsewhere EPERM, as for an unprivileged process. */
function sethostname(c: SysCtx, a: SysArgs): number {
  const len = a.u(1);
  if (len > UTS_LEN - 1) return -E.EINVAL; // __NEW_UTS_LEN (kernel/sys.c)
  const b = c.read(a.u(0), len);
  if (b === null) return -E.EFAULT;
  return c.host.setHostname ? c.host.setHostname(new TextDecoder().decode(b)) : -E.EPERM;
}

/** sysinfo load averages are fixed point with SI_LOAD_SHIFT = 16 (include/uapi/linux/sysinfo.h). */
const SI_LOAD_SCALE = 65536;

function sysinfo(c: SysCtx, a: SysArgs): number {
  const s = c.host.sysinfo(), b = new Uint8Array(112), dv = new DataView(b.buffer); // struct sysinfo, 64-bit
  dv.setBigInt64(0, BigInt(s.uptimeSec), true);
  s.loads.forEach((l, i) => dv.setBigUint64(8 + 8 * i, BigInt(Math.round(l * SI_LOAD_SCALE)), true));
  const longs = [s.totalRam, s.freeRam, s.sharedRam, s.bufferRam, s.totalSwap, s.freeSwap];
  longs.forEach((v, i) => dv.setBigUint64(32 + 8 * i, BigInt(Math.floor(v)), true)); // totalram .. freeswap
  dv.setUint16(80, Math.min(s.procs, 0xffff), true); // procs
  dv.setUint32(104, 1, true); // mem_unit
  return c.write(a.u(0), b) ? 0 : -E.EFAULT;
}

function getgroups(c: SysCtx, a: SysArgs): number {
  const size = a.i32(0), g = c.id.groups;
  if (size < 0) return -E.EINVAL;
  if (size === 0) return g.length;
  if (size < g.length) return -E.EINVAL;
  const b = new Uint8Array(4 * g.length), dv = new DataView(b.buffer);
  g.forEach((v, i) => dv.setUint32(4 * i, v >>> 0, true));
  return c.write(a.u(1), b) ? g.length : -E.EFAULT;
}

/** set*id: succeeds only when nothing would change (-1 means "unchanged"). */
function setIds(cur: number[], ...want: number[]): number {
  return want.every((w) => w === -1 || cur.includes(w)) ? 0 : -E.EPERM;
}

function getres(c: SysCtx, a: SysArgs, vals: number[]): number {
  for (let i = 0; i < 3; i++) if (!c.write(a.u(i), u32(vals[i]!))) return -E.EFAULT;
  return 0;
}

/** Number of RLIMIT_* resources (include/uapi/asm-generic/resource.h RLIM_NLIMITS). */
const RLIM_NLIMITS = 16, RLIMIT_NOFILE = 7;

function prlimit(c: SysCtx, pid: number, res: number, newp: number, oldp: number): number {
  if (pid !== 0 && pid !== c.proc.pid) return -E.ESRCH;
  if (res < 0 || res >= RLIM_NLIMITS) return -E.EINVAL;
  let next: [bigint, bigint] | null = null;
  if (newp !== 0) {
    const cur = c.readBig(newp), max = c.readBig(newp + 8);
    if (cur === null || max === null) return -E.EFAULT;
    if (cur > max) return -E.EINVAL;
    if (max > c.rlimits[res]![1]) return -E.EPERM;
    next = [cur, max];
  }
  if (oldp !== 0) {
    const [cur, max] = c.rlimits[res]!;
    const b = new Uint8Array(16);
    b.set(u64(cur), 0); b.set(u64(max), 8);
    if (!c.write(oldp, b)) return -E.EFAULT;
  }
  if (next) {
    c.rlimits[res] = next;
    if (res === RLIMIT_NOFILE) c.fds.maxFds = Number(next[0] > 1048576n ? 1048576n : next[0]);
  }
  return 0;
}

/** getrusage `who` (include/uapi/linux/resource.h). */
const RUSAGE_SELF = 0, RUSAGE_CHILDREN = -1, RUSAGE_THREAD = 1;

function getrusage(c: SysCtx, a: SysArgs): number {
  const who = a.i32(0);
  if (who !== RUSAGE_SELF && who !== RUSAGE_CHILDREN && who !== RUSAGE_THREAD) return -E.EINVAL;
  const b = new Uint8Array(144), dv = new DataView(b.buffer); // struct rusage, 64-bit
  if (who !== RUSAGE_CHILDREN) {
    const r = c.host.rusage();
    b.set(encodeTimeval(BigInt(r.utimeUs) * 1000n), 0);
    b.set(encodeTimeval(BigInt(r.stimeUs) * 1000n), 16);
    const longs: Array<[number, number]> = [[32, r.maxRssKb], [64, r.minflt], [72, r.majflt], [88, r.inblock],
      [96, r.oublock], [128, r.nvcsw], [136, r.nivcsw]];
    for (const [off, v] of longs) dv.setBigInt64(off, BigInt(Math.floor(v)), true);
  }
  return c.write(a.u(1), b) ? 0 : -E.EFAULT;
}

function schedGetaffinity(c: SysCtx, a: SysArgs): number {
  const pid = a.i32(0), len = a.u(1);
  if (!self(c, pid)) return -E.ESRCH;
  if (len < 8 || len % 8 !== 0) return -E.EINVAL; // kernel/sched/core.c: whole unsigned longs, >= nr_cpu_ids bits
  // Like qemu-user, report the host CPUs this process may use (threads are unavailable anyway).
  const n = Math.max(1, Math.min(c.host.cpuCount(), len * 8));
  const mask = new Uint8Array(Math.ceil(n / 64) * 8);
  for (let i = 0; i < n; i++) mask[i >> 3]! |= 1 << (i & 7);
  return c.write(a.u(2), mask) ? mask.length : -E.EFAULT;
}

/** Scheduling policies (include/uapi/linux/sched.h). */
const SCHED_FIFO = 1, SCHED_RR = 2;

/** prctl options (include/uapi/linux/prctl.h). */
const PR_SET_NAME = 15, PR_GET_NAME = 16;
/** Task name size (include/linux/sched.h TASK_COMM_LEN). */
const TASK_COMM_LEN = 16;

function prctl(c: SysCtx, a: SysArgs): number {
  switch (a.i32(0)) {
    case PR_SET_NAME: {
      const b = c.read(a.u(1), TASK_COMM_LEN);
      let name: string | null = null;
      if (b) { const z = b.indexOf(0); name = new TextDecoder().decode(b.subarray(0, z < 0 ? TASK_COMM_LEN - 1 : Math.min(z, TASK_COMM_LEN - 1))); }
      if (name === null) { const s = c.str(a.u(1), TASK_COMM_LEN); if (typeof s === 'number') return -E.EFAULT; name = s; }
      c.comm = name;
      return 0;
    }
    case PR_GET_NAME: {
      const b = new Uint8Array(TASK_COMM_LEN);
      b.set(new TextEncoder().encode(c.comm).subarray(0, TASK_COMM_LEN - 1));
      return c.write(a.u(1), b) ? 0 : -E.EFAULT;
    }
    default: return -E.EINVAL;
  }
}

/** riscv_hwprobe keys and values (arch/riscv/include/uapi/asm/hwprobe.h). */
const HWPROBE_KEY_MVENDORID = 0, HWPROBE_KEY_MARCHID = 1, HWPROBE_KEY_MIMPID = 2, HWPROBE_KEY_BASE_BEHAVIOR = 3,
  HWPROBE_KEY_IMA_EXT_0 = 4, HWPROBE_KEY_CPUPERF_0 = 5, HWPROBE_KEY_ZICBOZ_BLOCK_SIZE = 6,
  HWPROBE_KEY_HIGHEST_VIRT_ADDRESS = 7, HWPROBE_KEY_TIME_CSR_FREQ = 8, HWPROBE_KEY_MISALIGNED_SCALAR_PERF = 9;
const HWPROBE_BASE_BEHAVIOR_IMA = 1n;
const HWPROBE_IMA_FD = 1n << 0n, HWPROBE_IMA_C = 1n << 1n, HWPROBE_EXT_ZBA = 1n << 3n, HWPROBE_EXT_ZBB = 1n << 4n,
  HWPROBE_EXT_ZBS = 1n << 5n;
const HWPROBE_MISALIGNED_UNKNOWN = 0n;

/** The value of a hwprobe key for this hart, or null if the key is unknown. */
function hwprobeValue(c: SysCtx, key: bigint): bigint | null {
  switch (Number(key)) {
    case HWPROBE_KEY_MVENDORID: case HWPROBE_KEY_MARCHID: case HWPROBE_KEY_MIMPID: return 0n;
    case HWPROBE_KEY_BASE_BEHAVIOR: return HWPROBE_BASE_BEHAVIOR_IMA;
    case HWPROBE_KEY_IMA_EXT_0: return HWPROBE_IMA_FD | HWPROBE_IMA_C | HWPROBE_EXT_ZBA | HWPROBE_EXT_ZBB | HWPROBE_EXT_ZBS;
    case HWPROBE_KEY_CPUPERF_0: case HWPROBE_KEY_MISALIGNED_SCALAR_PERF: return HWPROBE_MISALIGNED_UNKNOWN;
    case HWPROBE_KEY_ZICBOZ_BLOCK_SIZE: return 0n; // no Zicboz
    case HWPROBE_KEY_HIGHEST_VIRT_ADDRESS: return 0x3f_ffff_ffffn; // Sv39 user space top
    case HWPROBE_KEY_TIME_CSR_FREQ: return BigInt(c.proc.hart.timebaseHz);
    default: return null;
  }
}

function riscvHwprobe(c: SysCtx, a: SysArgs): number {
  const pairs = a.u(0), count = a.u(1), flags = a.u32(4);
  if (flags !== 0) return -E.EINVAL;
  if (count > 1 << 16) return -E.EINVAL;
  const b = c.read(pairs, count * 16);
  if (!b) return -E.EFAULT;
  const dv = new DataView(b.buffer);
  for (let i = 0; i < count; i++) {
    const v = hwprobeValue(c, dv.getBigInt64(16 * i, true));
    if (v === null) dv.setBigInt64(16 * i, -1n, true);
    dv.setBigUint64(16 * i + 8, v ?? 0n, true);
  }
  return c.write(pairs, b) ? 0 : -E.EFAULT;
}

function getcpu(c: SysCtx, a: SysArgs): number {
  if (a.u(0) !== 0 && !c.write(a.u(0), u32(0))) return -E.EFAULT;
  if (a.u(1) !== 0 && !c.write(a.u(1), u32(0))) return -E.EFAULT;
  return 0;
}

/** True if `pid` names a task of the VM (0: the caller), as the sched_* calls and get_robust_list accept. */
const self = (c: SysCtx, pid: number): boolean => pid === 0 || c.kernel.task(pid) !== undefined;

/** Process syscalls (include/uapi/asm-generic/unistd.h; riscv_hwprobe: arch/riscv/include/uapi/asm/unistd.h). */
export const processSyscalls: SyscallDef[] = [
  { nr: 92, name: 'personality', fn: () => 0 }, // PER_LINUX
  { nr: 93, name: 'exit', fn: (c, a) => { c.kernel.exitThread(c, a.i32(0)); return 0; } },
  { nr: 94, name: 'exit_group', fn: (c, a) => { c.kernel.exitGroup(c, a.i32(0)); return 0; } },
  { nr: 96, name: 'set_tid_address', fn: (c, a) => { c.tidAddress = a.u(0); return c.tid; } },
  { nr: 99, name: 'set_robust_list', fn: (c, a) => { if (a.u(1) !== 24) return -E.EINVAL; c.robustHead = a.u(0); return 0; } },
  {
    nr: 100, name: 'get_robust_list', fn: (c, a) => {
      if (!self(c, a.i32(0))) return -E.ESRCH;
      return c.write(a.u(1), u64(c.robustHead)) && c.write(a.u(2), u64(24)) ? 0 : -E.EFAULT; // sizeof(struct robust_list_head)
    },
  },
  { nr: 118, name: 'sched_setparam', fn: (c, a) => (self(c, a.i32(0)) ? 0 : -E.ESRCH) },
  { nr: 119, name: 'sched_setscheduler', fn: (c, a) => (self(c, a.i32(0)) ? (a.i32(1) === 0 ? 0 : -E.EPERM) : -E.ESRCH) },
  { nr: 120, name: 'sched_getscheduler', fn: (c, a) => (self(c, a.i32(0)) ? 0 : -E.ESRCH) }, // SCHED_OTHER
  { nr: 121, name: 'sched_getparam', fn: (c, a) => (self(c, a.i32(0)) ? (c.write(a.u(1), u32(0)) ? 0 : -E.EFAULT) : -E.ESRCH) },
  { nr: 122, name: 'sched_setaffinity', fn: (c, a) => (self(c, a.i32(0)) ? 0 : -E.ESRCH) },
  { nr: 123, name: 'sched_getaffinity', fn: schedGetaffinity },
  { nr: 124, name: 'sched_yield', fn: (c) => { c.kernel.resched = true; return 0; } },
  { nr: 125, name: 'sched_get_priority_max', fn: (_c, a) => (a.i32(0) === SCHED_FIFO || a.i32(0) === SCHED_RR ? 99 : 0) },
  { nr: 126, name: 'sched_get_priority_min', fn: (_c, a) => (a.i32(0) === SCHED_FIFO || a.i32(0) === SCHED_RR ? 1 : 0) },
  { nr: 140, name: 'setpriority', fn: () => 0 },
  { nr: 141, name: 'getpriority', fn: () => 20 }, // 20 - nice, with nice 0 (kernel/sys.c)
  { nr: 143, name: 'setregid', fn: (c, a) => setIds([c.id.gid, c.id.egid], a.i32(0), a.i32(1)) },
  { nr: 144, name: 'setgid', fn: (c, a) => setIds([c.id.gid, c.id.egid], a.i32(0)) },
  { nr: 145, name: 'setreuid', fn: (c, a) => setIds([c.id.uid, c.id.euid], a.i32(0), a.i32(1)) },
  { nr: 146, name: 'setuid', fn: (c, a) => setIds([c.id.uid, c.id.euid], a.i32(0)) },
  { nr: 147, name: 'setresuid', fn: (c, a) => setIds([c.id.uid, c.id.euid], a.i32(0), a.i32(1), a.i32(2)) },
  { nr: 148, name: 'getresuid', fn: (c, a) => getres(c, a, [c.id.uid, c.id.euid, c.id.euid]) },
  { nr: 149, name: 'setresgid', fn: (c, a) => setIds([c.id.gid, c.id.egid], a.i32(0), a.i32(1), a.i32(2)) },
  { nr: 150, name: 'getresgid', fn: (c, a) => getres(c, a, [c.id.gid, c.id.egid, c.id.egid]) },
  { nr: 151, name: 'setfsuid', fn: (c) => c.id.euid },
  { nr: 152, name: 'setfsgid', fn: (c) => c.id.egid },
  { nr: 154, name: 'setpgid', fn: (c, a) => c.kernel.setpgid(c, a.i32(0), a.i32(1)) },
  { nr: 155, name: 'getpgid', fn: (c, a) => c.kernel.getpgid(c, a.i32(0)) },
  { nr: 156, name: 'getsid', fn: (c, a) => c.kernel.getsid(c, a.i32(0)) },
  { nr: 157, name: 'setsid', fn: (c) => c.kernel.setsid(c) },
  { nr: 158, name: 'getgroups', fn: getgroups },
  { nr: 159, name: 'setgroups', fn: () => -E.EPERM },
  { nr: 160, name: 'uname', fn: uname },
  { nr: 161, name: 'sethostname', fn: sethostname },
  { nr: 163, name: 'getrlimit', fn: (c, a) => prlimit(c, 0, a.i32(0), 0, a.u(1)) },
  { nr: 164, name: 'setrlimit', fn: (c, a) => prlimit(c, 0, a.i32(0), a.u(1), 0) },
  { nr: 165, name: 'getrusage', fn: getrusage },
  { nr: 167, name: 'prctl', fn: prctl },
  { nr: 168, name: 'getcpu', fn: getcpu },
  { nr: 172, name: 'getpid', fn: (c) => c.proc.pid },
  { nr: 173, name: 'getppid', fn: (c) => c.kernel.ppid(c) },
  { nr: 174, name: 'getuid', fn: (c) => c.id.uid },
  { nr: 175, name: 'geteuid', fn: (c) => c.id.euid },
  { nr: 176, name: 'getgid', fn: (c) => c.id.gid },
  { nr: 177, name: 'getegid', fn: (c) => c.id.egid },
  { nr: 178, name: 'gettid', fn: (c) => c.tid },
  { nr: 179, name: 'sysinfo', fn: sysinfo },
  { nr: 258, name: 'riscv_hwprobe', fn: riscvHwprobe },
  { nr: 261, name: 'prlimit64', fn: (c, a) => prlimit(c, a.i32(0), a.i32(1), a.u(2), a.u(3)) },
];
