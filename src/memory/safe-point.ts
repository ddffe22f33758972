/**
 * Safe points and remap delivery between a host thread and the threads
 * running a VM's harts (docs/memory.md, "Threads").
 *
 * The ownership rule of p2m tables (src/memory/p2m.ts): a VM's own thread
 * changes its table on its fault path; the host (the sharing scanner,
 * cross-VM eviction) changes it only while the VM is stopped at a safe
 * point. A `SafePointGate` per VM makes that stop:
 *
 * 1. The host calls `stop(timeoutMs)` (or `SafePointGate.stopAll`): it
 *    stores a fresh request number in the gate's state word and waits,
 *    with Atomics.waitAsync (its event loop keeps running), until every
 *    participant has acknowledged that number or is idle or gone.
 * 2. Each participant (one per hart thread; today one per VM) calls
 *    `poll(i)` between run-loop slices: one Atomics.load of the state
 *    word. When a request is pending it acknowledges it and blocks in
 *    Atomics.wait until the state changes.
 * 3. The host changes the VM's tables. Every remap it makes goes to the
 *    VM's `RemapLog` instead of the VM's TLBs (the host's view of the
 *    table has `onRemap` pushing to the log).
 * 4. The host calls `release()`. Each participant's `poll` returns true,
 *    and before it runs guest code again the participant drains the log
 *    into its own invalidation (the table's remap hook), or flushes
 *    everything if the log overflowed.
 *
 * A stop that times out (a participant stuck outside its run loop) is
 * released again and rejects with an error naming the VM; nothing was
 * changed, and the host may retry or give up on that VM.
 *
 * A participant that blocks outside guest code for long (a hart in WFI, a
 * thread waiting on I/O) calls `enterIdle(i)` first and `exitIdle(i)`
 * after: an idle participant counts as stopped, and `exitIdle` parks if a
 * stop is in progress, so it never re-enters guest code while the host
 * holds the VM. The Dekker-style ordering (host: store request, load
 * status; participant: store status, load request) relies on Atomics
 * being sequentially consistent (ECMA-262 §29, "Memory Model").
 *
 * Several harts of one VM on several threads: each joins the gate as a
 * participant (`join`) and the log as a consumer (`addConsumer`), with a
 * read cursor of its own. The host writes the log only while every
 * participant is stopped, so it needs no lock.
 *
 * Blocking: participants block in Atomics.wait, which a worker may do; a
 * browser's main thread may not (it would run VMs on workers anyway). The
 * host never blocks: it waits with Atomics.waitAsync (Node 16+), or polls
 * with a 1 ms timer on an engine without it.
 *
 * Not covered yet: with several hart threads per VM, a remap one hart makes
 * on its own fault path (copy-on-write, its VM's own eviction) must reach
 * the VM's other harts too, like a TLB shootdown. The gate has one
 * controller (the host), so that step needs its own mechanism, or the host
 * as the go-between.
 */

/** Most participants (hart threads) of one gate: one per CPU slot (src/memory/guest-ram.ts, CPU_SLOTS). */
export const MAX_GATE_PARTICIPANTS = 64;
/** Participant status: slot not in use (counts as stopped). */
const ST_UNUSED = -1;
/** Participant status: idle outside guest code (counts as stopped). */
const ST_IDLE = -2;
/** Participant status: running guest code. Any positive status is the request number it acknowledged. */
const ST_RUNNING = 0;
// Gate words: the request (0: none), the doorbell the host sleeps on, the last request number, the progress count,
// then one status per participant.
const G_REQUEST = 0, G_DOORBELL = 1, G_SEQ = 2, G_PROGRESS = 3, G_STATUS = 4;

/** The structured-cloneable handle of a gate. */
export interface SafePointGateHandle {
  /** The VM's name, for messages. */
  name: string;
  /** The gate's words. */
  words: SharedArrayBuffer;
}

type WaitAsync = (a: Int32Array, i: number, v: number, t?: number) => { async: false; value: string } | { async: true; value: Promise<string> };

/** A VM's stop-the-world gate: the host requests a stop, its hart threads acknowledge at safe points. */
export class SafePointGate {
  /** The VM's name, for messages. */
  readonly name: string;
  private readonly w: Int32Array;

  /** A new gate (pass `handle()` to the VM's threads); the second argument is `attach`'s. */
  constructor(name = 'vm', from?: SafePointGateHandle) {
    this.name = name;
    if (from !== undefined) { this.w = new Int32Array(from.words); return; }
    this.w = new Int32Array(new SharedArrayBuffer((G_STATUS + MAX_GATE_PARTICIPANTS) * 4));
    this.w.fill(ST_UNUSED, G_STATUS);
  }

  /** This thread's view of a gate another thread made. */
  static attach(handle: SafePointGateHandle): SafePointGate { return new SafePointGate(handle.name, handle); }

  /** The structured-cloneable handle for `SafePointGate.attach`. */
  handle(): SafePointGateHandle { return { name: this.name, words: this.w.buffer as SharedArrayBuffer }; }

  // ---- Participants (hart threads) ----

  /**
   * Joins as a participant and returns its index (-1 when all
   * MAX_GATE_PARTICIPANTS are taken). Parks first if a stop is in progress.
   */
  join(): number {
    const w = this.w;
    for (let i = 0; i < MAX_GATE_PARTICIPANTS; i++) {
      if (Atomics.compareExchange(w, G_STATUS + i, ST_UNUSED, ST_RUNNING) === ST_UNUSED) {
        if (Atomics.load(w, G_REQUEST) !== 0) this.park(i);
        return i;
      }
    }
    return -1;
  }

  /** Leaves (the thread exits or stops running guest code for good); counts as stopped from now on. */
  leave(i: number): void {
    Atomics.store(this.w, G_STATUS + i, ST_UNUSED);
    this.ring();
  }

  /**
   * The safe-point check, between run-loop slices: one Atomics.load when
   * no stop is requested. Returns true when the thread was stopped (then
   * drain the RemapLog before running guest code).
   */
  poll(i: number): boolean {
    if (Atomics.load(this.w, G_REQUEST) === 0) { Atomics.add(this.w, G_PROGRESS, 1); return false; }
    return this.park(i);
  }

  /** Marks participant `i` idle outside guest code (it counts as stopped). */
  enterIdle(i: number): void {
    Atomics.store(this.w, G_STATUS + i, ST_IDLE);
    this.ring();
  }

  /** Back from idle: parks if a stop is in progress. Returns true when it parked (drain the RemapLog; draining is cheap anyway). */
  exitIdle(i: number): boolean {
    Atomics.store(this.w, G_STATUS + i, ST_RUNNING);
    if (Atomics.load(this.w, G_REQUEST) === 0) return false;
    return this.park(i);
  }

  /** Acknowledges each request and sleeps until it is released (requests back to back are acknowledged in turn). */
  private park(i: number): boolean {
    const w = this.w;
    let parked = false;
    for (;;) {
      const req = Atomics.load(w, G_REQUEST);
      if (req === 0) break;
      Atomics.store(w, G_STATUS + i, req);
      this.ring();
      Atomics.wait(w, G_REQUEST, req);
      parked = true;
    }
    Atomics.store(w, G_STATUS + i, ST_RUNNING);
    return parked;
  }

  private ring(): void {
    Atomics.add(this.w, G_DOORBELL, 1);
    Atomics.notify(this.w, G_DOORBELL);
  }

  // ---- The host (one controlling thread per gate) ----

  /** Posts a stop request and returns its number (participants park at their next poll). */
  request(): number {
    const w = this.w;
    let seq = (w[G_SEQ]! + 1) | 0;
    if (seq <= 0) seq = 1;
    w[G_SEQ] = seq;
    Atomics.store(w, G_REQUEST, seq);
    return seq;
  }

  /** Participants that have not yet acknowledged request `seq` (nor are idle or gone). */
  pending(seq: number): number {
    const w = this.w;
    let n = 0;
    for (let i = 0; i < MAX_GATE_PARTICIPANTS; i++) {
      const s = Atomics.load(w, G_STATUS + i);
      if (s !== ST_UNUSED && s !== ST_IDLE && s !== seq) n++;
    }
    return n;
  }

  /** Whether a stop is requested or held. */
  get stopping(): boolean { return Atomics.load(this.w, G_REQUEST) !== 0; }

  /** Safe points passed without a stop: it grows only while the participants run guest code. */
  get progress(): number { return Atomics.load(this.w, G_PROGRESS); }

  /** Whether every participant is idle (or the gate has none): such a VM runs no guest code to make progress with. */
  get idle(): boolean {
    const w = this.w;
    for (let i = 0; i < MAX_GATE_PARTICIPANTS; i++) {
      const s = Atomics.load(w, G_STATUS + i);
      if (s !== ST_UNUSED && s !== ST_IDLE) return false;
    }
    return true;
  }

  /**
   * Waits, without blocking the event loop, until every participant has
   * acknowledged request `seq`; at `deadline` (a Date.now() time) it
   * releases the gate and rejects with an error naming the VM.
   */
  async awaitStopped(seq: number, deadline: number, timeoutMs: number): Promise<void> {
    const w = this.w;
    const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;
    for (;;) {
      const bell = Atomics.load(w, G_DOORBELL);
      const left = this.pending(seq);
      if (left === 0) return;
      const ms = deadline - Date.now();
      if (ms <= 0) {
        this.release();
        throw new Error(`${this.name}: ${left} hart thread(s) did not reach a safe point within ${timeoutMs} ms`);
      }
      if (waitAsync === undefined) { // an engine without Atomics.waitAsync: poll the doorbell every millisecond
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      const r = waitAsync(w, G_DOORBELL, bell, ms);
      if (r.async) {
        // A pending waitAsync does not keep Node's event loop alive: a timer does, until the wait ends.
        const keepAlive = setTimeout(() => {}, ms + 1);
        try { await r.value; } finally { clearTimeout(keepAlive); }
      }
    }
  }

  /** Stops every participant at a safe point; rejects (gate released) after `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    const seq = this.request();
    await this.awaitStopped(seq, Date.now() + timeoutMs, timeoutMs);
  }

  /** Lets the participants run again (also cancels a pending request). */
  release(): void {
    Atomics.store(this.w, G_REQUEST, 0);
    Atomics.notify(this.w, G_REQUEST);
  }

  /**
   * Stops several VMs together (requests first, so they stop in parallel);
   * if any does not stop within `timeoutMs`, releases them all and rejects.
   */
  static async stopAll(gates: readonly SafePointGate[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const seqs = gates.map((g) => g.request());
    try {
      for (let k = 0; k < gates.length; k++) await gates[k]!.awaitStopped(seqs[k]!, deadline, timeoutMs);
    } catch (e) {
      for (const g of gates) g.release();
      throw e;
    }
  }

  /** Releases several VMs. */
  static releaseAll(gates: readonly SafePointGate[]): void {
    for (const g of gates) g.release();
  }
}

/** Most consumers (hart threads) of one log. */
export const MAX_REMAP_CONSUMERS = MAX_GATE_PARTICIPANTS;
/** Entries a log holds by default: one safe point's remaps beyond this flush every TLB instead (a tuning choice). */
export const DEFAULT_REMAP_LOG_ENTRIES = 4096;
// Log words: the write position, the capacity, then one read cursor per consumer (-1: free), then (gpn, oldFrame) pairs.
const L_WRITE = 0, L_CAP = 1, L_CURSOR = 2, L_ENTRIES = L_CURSOR + MAX_REMAP_CONSUMERS;

/** The structured-cloneable handle of a remap log. */
export interface RemapLogHandle {
  /** The log's words. */
  words: SharedArrayBuffer;
}

/** Told to drop every cached translation (the log overflowed). */
export type FlushAllHook = () => void;

/**
 * A VM's remap log: the host appends (gpn, oldFrame) for every entry it
 * changed while the VM was stopped; each consumer (hart thread) drains it
 * after release into its own invalidation. A ring of fixed size: a
 * consumer that fell more than a ring behind flushes everything instead.
 */
export class RemapLog {
  private readonly w: Int32Array;
  private readonly mask: number;

  /** A log of `entries` (rounded up to a power of two) remaps; the second argument is `attach`'s. */
  constructor(entries = DEFAULT_REMAP_LOG_ENTRIES, from?: RemapLogHandle) {
    if (from !== undefined) {
      this.w = new Int32Array(from.words);
    } else {
      if (!Number.isInteger(entries) || entries < 1 || entries > 1 << 24) throw new RangeError(`remap log of ${entries} entries`);
      let cap = 1;
      while (cap < entries) cap *= 2;
      this.w = new Int32Array(new SharedArrayBuffer((L_ENTRIES + 2 * cap) * 4));
      this.w[L_CAP] = cap;
      this.w.fill(-1, L_CURSOR, L_ENTRIES);
    }
    this.mask = this.w[L_CAP]! - 1;
  }

  /** This thread's view of a log another thread made. */
  static attach(handle: RemapLogHandle): RemapLog { return new RemapLog(0, handle); }

  /** The structured-cloneable handle for `RemapLog.attach`. */
  handle(): RemapLogHandle { return { words: this.w.buffer as SharedArrayBuffer }; }

  /** Entries the ring holds. */
  get capacity(): number { return this.mask + 1; }

  /** Registers a consumer that sees entries from now on; its index, or -1 when all are taken. */
  addConsumer(): number {
    const w = this.w;
    for (let i = 0; i < MAX_REMAP_CONSUMERS; i++) {
      // A free cursor is -1; a write position is never negative: it wraps back to 0 below 2^31.
      if (Atomics.compareExchange(w, L_CURSOR + i, -1, Atomics.load(w, L_WRITE)) === -1) return i;
    }
    return -1;
  }

  /** Unregisters consumer `i`. */
  removeConsumer(i: number): void { Atomics.store(this.w, L_CURSOR + i, -1); }

  /** Appends a remap (the host, while every consumer is stopped). */
  push(gpn: number, oldFrame: number): void {
    const w = this.w;
    const pos = w[L_WRITE]!;
    const at = L_ENTRIES + 2 * (pos & this.mask);
    w[at] = gpn;
    w[at + 1] = oldFrame;
    Atomics.store(w, L_WRITE, (pos + 1) & 0x7fffffff);
  }

  /**
   * Consumer `i` takes every entry since its last drain: `onRemap` for each,
   * or `flushAll` once if more than a ring's worth arrived. Returns the
   * entries delivered (-1: flushed). Call after `poll` returned true.
   */
  drain(i: number, onRemap: (gpn: number, oldFrame: number) => void, flushAll: FlushAllHook): number {
    const w = this.w;
    const end = Atomics.load(w, L_WRITE);
    let pos = w[L_CURSOR + i]!;
    const n = (end - pos) & 0x7fffffff;
    if (n === 0) return 0;
    w[L_CURSOR + i] = end;
    if (n > this.mask + 1) { flushAll(); return -1; }
    for (; pos !== end; pos = (pos + 1) & 0x7fffffff) {
      const at = L_ENTRIES + 2 * (pos & this.mask);
      onRemap(w[at]!, w[at + 1]!);
    }
    return n;
  }
}
