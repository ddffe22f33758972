/**
 * A VM's lifecycle, as an explicit state machine (Firecracker's VM states,
 * QEMU's RunState reduced to what tsvm has):
 *
 *   created ──run──▶ running ◀──resume── paused
 *      │                │ ──pause──▶       │
 *      │                ▼                  │
 *      └─────────────▶ shutdown ◀──────────┘
 *
 * `created` may also go to `paused` (paused before it first ran, e.g. by
 * QMP `stop` before the run loop started). `shutdown` is final: a VM is
 * built again rather than restarted. Every other transition is a bug in
 * the caller and throws a VmStateError.
 */

/** The states of a VM's lifecycle. */
export type VmState = 'created' | 'running' | 'paused' | 'shutdown';

/** The transitions allowed out of each state. */
export const VM_TRANSITIONS: Readonly<Record<VmState, readonly VmState[]>> = Object.freeze({
  created: Object.freeze(['running', 'paused', 'shutdown'] as const),
  running: Object.freeze(['paused', 'shutdown'] as const),
  paused: Object.freeze(['running', 'shutdown'] as const),
  shutdown: Object.freeze([] as const),
});

/** A transition the lifecycle does not allow. */
export class VmStateError extends Error {
  /** The state the VM was in. */
  readonly from: VmState;
  /** The state it was asked to go to. */
  readonly to: VmState;
  constructor(from: VmState, to: VmState, action: string) {
    const allowed = VM_TRANSITIONS[from];
    super(`cannot ${action}: the VM is ${from} (from ${from} it can go to ${allowed.length ? allowed.join(', ') : 'nothing; shutdown is final'})`);
    this.from = from;
    this.to = to;
  }
}

/** The current state of one VM and its checked transitions. */
export class VmLifecycle {
  private current: VmState = 'created';

  /** The current state. */
  get state(): VmState { return this.current; }

  /** Whether `to` is allowed from the current state. */
  can(to: VmState): boolean { return VM_TRANSITIONS[this.current].includes(to); }

  /** Moves to `to`; throws VmStateError (naming `action`) if that is not allowed from the current state. */
  transition(to: VmState, action = `go to ${to}`): void {
    if (!this.can(to)) throw new VmStateError(this.current, to, action);
    this.current = to;
  }
}
