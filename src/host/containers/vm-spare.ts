/**
 * The vm runtime's warm spare, as Kata Containers' VM cache (factory) keeps
 * booted VMs for containers not yet created: one microVM booted to its
 * agent's READY with the network up and no root yet (its root share is an
 * `-fsdev late`, src/vmm/fs-late.ts). Starting a container that fits the
 * spare's shape takes it: the host binds the container's layers to the
 * share (QMP `__tsvm-fsdev-bind`), renames the VM after the container, and
 * the agent mounts the root and takes the hostname and pids limit (its
 * CONFIG frame, docs/vm-agent.md). The boot (seconds) is then off the
 * container's start.
 *
 * As with the process runtime's spare, the first spare boots only after
 * the host has started its first vm container, the next one a while after
 * a spare is taken, and a spare that dies is replaced after a longer pause.
 * The spare is hidden from `vm ls` until it is taken. TSVM_SPARE_VM=0 in
 * the host's environment turns it off.
 */

/** A booted spare as the runtime made it. */
export interface SpareVm {
  /** Resolves when the VM has ended. */
  readonly gone: Promise<void>;
  /** Ends the VM and frees what it holds (its socket directory). */
  end(): Promise<void>;
}

/** Milliseconds after a spare is taken before the next one boots (the new container's own start goes first). */
const REFILL_DELAY_MS = 2_000;
/** Milliseconds before another try after a spare failed to boot or died idle. */
const RETRY_DELAY_MS = 30_000;

/** Keeps one booted spare VM (see the module comment). */
export class VmSpareKeeper<T extends SpareVm> {
  private spare: T | null = null;
  private booting = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Whether a vm container has started (spares are kept only after the first). */
  private wanted = false;
  /** Containers started on a spare, and cold (for stats and tests). */
  readonly counts = { warm: 0, cold: 0 };

  /** `boot` makes a spare (rejects when it could not); `enabled`: false keeps none. */
  constructor(private readonly boot: () => Promise<T>, private readonly enabled: boolean, private readonly warn: (line: string) => void) {}

  /** Whether a spare is idle and ready, booting, or neither. */
  state(): 'ready' | 'booting' | 'none' { return this.spare !== null ? 'ready' : this.booting ? 'booting' : 'none'; }

  /** The idle spare, taken (null: none ready; the caller boots cold). Either way the next spare is scheduled. */
  take(): T | null {
    const s = this.spare;
    this.spare = null;
    this.wanted = true;
    if (s !== null) this.counts.warm++; else this.counts.cold++;
    this.refill(REFILL_DELAY_MS);
    return s;
  }

  /** A container that cannot use a spare started cold: counts it, and starts keeping spares. */
  cold(): void {
    this.counts.cold++;
    this.wanted = true;
    this.refill(REFILL_DELAY_MS);
  }

  /** Stops keeping a spare and ends the idle one. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const s = this.spare;
    this.spare = null;
    await s?.end();
  }

  /** Boots the next spare after `ms` (once; nothing when disabled, closed, booting or holding one). */
  private refill(ms: number): void {
    if (!this.enabled || !this.wanted || this.closed || this.timer !== null || this.spare !== null || this.booting) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.closed || this.spare !== null || this.booting) return;
      this.booting = true;
      this.boot().then((s) => {
        this.booting = false;
        if (this.closed) { void s.end(); return; }
        this.spare = s;
        void s.gone.then(() => {
          if (this.spare !== s) return; // taken: the container owns it now
          this.spare = null;
          this.warn('the spare container VM ended while idle');
          this.refill(RETRY_DELAY_MS);
        });
      }, (e: unknown) => {
        this.booting = false;
        this.warn(`a spare container VM did not boot: ${(e as Error).message.split('\n')[0]!}`);
        this.refill(RETRY_DELAY_MS);
      });
    }, ms);
    this.timer.unref();
  }
}
