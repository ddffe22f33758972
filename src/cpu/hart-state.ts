/**
 * Architectural state of one RISC-V hart, held in typed arrays over a single
 * ArrayBuffer so that a later WebAssembly JIT can share it.
 *
 * 64-bit values are split into 32-bit halves: register i lives at
 * `x[2*i]` (low word) and `x[2*i+1]` (high word). Floating-point registers
 * keep their raw 64-bit pattern (NaN-boxing included) in `f` with the same
 * layout; `fd` aliases the same bytes as doubles and `fs` as singles
 * (`fs[2*i]` is the low 32 bits of f[i]).
 */

/** Byte size of the hart-state block: x (256) + f (256) + scalars (256). */
export const HART_STATE_BYTES = 768;

/** Indices into `HartState.s`, the scalar block (all int32). */
export const enum S {
  /** pc, low and high words. */
  PC_LO = 0,
  PC_HI = 1,
  /** fcsr.fflags (5 bits, Zicsr/F spec §13.2) — accrued exception flags. */
  FFLAGS = 2,
  /** fcsr.frm (3 bits) — dynamic rounding mode. */
  FRM = 3,
  /** Current privilege level: 0 = U, 1 = S, 3 = M. */
  PRIV = 4,
  /** LR/SC reservation: 1 when valid, and the reserved address halves. */
  RES_VALID = 5,
  RES_LO = 6,
  RES_HI = 7,
  /** Exit information written when `run` stops (see ExitReason). */
  EXIT_CAUSE = 8,
  EXIT_TVAL_LO = 9,
  EXIT_TVAL_HI = 10,
  /** Length of the instruction that caused the exit (2 or 4). */
  EXIT_ILEN = 11,
  /** The raw instruction bits of an illegal instruction (for tval). */
  EXIT_INSN = 12,
  /** The value LR loaded (SC succeeds only if memory still holds it, as QEMU does). */
  RES_VAL_LO = 13,
  RES_VAL_HI = 14,
  /** JIT: byte offset (in guest RAM's memory) of the current data TLB, set before generated code runs. */
  JIT_TLB = 15,
  /** JIT: set by the store slow path when it dropped translated code (the running block may be stale). */
  JIT_FLUSHED = 16,
  /** JIT: the budget left when generated code returns. */
  JIT_BUDGET = 17,
  /** JIT: byte offset of the current fetch TLB (chained jumps check the target's translation in it). */
  JIT_FTLB = 18,
  /** JIT: (unit slot << 10) | exit site of the last unchained exit, or -1 (the dispatcher links the site). */
  JIT_SITE = 19,
  /** Written by the interpreter's exit bookkeeping instead of EXIT_ILEN on exits that define no length (never read). */
  EXIT_SCRATCH = 20,
}

/** fflags bits (F spec §13.2). */
export const FFLAG_NX = 1; // inexact
export const FFLAG_UF = 2; // underflow
export const FFLAG_OF = 4; // overflow
export const FFLAG_DZ = 8; // divide by zero
export const FFLAG_NV = 16; // invalid operation

/** Rounding modes (F spec §13.2, Table 13.1). */
export const RM_RNE = 0;
export const RM_RTZ = 1;
export const RM_RDN = 2;
export const RM_RUP = 3;
export const RM_RMM = 4;
/** Dynamic rounding mode selector in an instruction's rm field. */
export const RM_DYN = 7;

/** The architectural register state of one hart. */
export class HartState {
  /** Backing buffer; may be a slice of a WebAssembly.Memory later. */
  readonly buffer: ArrayBuffer;
  /** Integer registers, 32-bit halves: x[2i] low, x[2i+1] high. x0 stays 0. */
  readonly x: Int32Array;
  /** Float registers as raw bits, same layout as `x`. */
  readonly f: Int32Array;
  /** Float registers viewed as doubles (same bytes as `f`). */
  readonly fd: Float64Array;
  /** Float registers viewed as singles: fs[2i] is the low half of f[i]. */
  readonly fs: Float32Array;
  /** Scalars: pc, fcsr fields, privilege, reservation, exit info (see S). */
  readonly s: Int32Array;
  /** Retired-instruction counter (exact up to 2^53). */
  instret = 0;
  /** Byte offset of this state in guest RAM's WebAssembly memory, or -1 when it has a buffer of its own. */
  readonly base: number;

  constructor(buffer?: ArrayBuffer, byteOffset = 0) {
    this.base = buffer === undefined ? -1 : byteOffset;
    buffer ??= new ArrayBuffer(HART_STATE_BYTES);
    this.buffer = buffer;
    this.x = new Int32Array(buffer, byteOffset, 64);
    this.f = new Int32Array(buffer, byteOffset + 256, 64);
    this.fd = new Float64Array(buffer, byteOffset + 256, 32);
    this.fs = new Float32Array(buffer, byteOffset + 256, 64);
    this.s = new Int32Array(buffer, byteOffset + 512, 64);
  }

  /** Reads register i as a JS number (exact only when it fits in 53 bits). */
  getX(i: number): number {
    return this.x[2 * i + 1]! * 4294967296 + (this.x[2 * i]! >>> 0);
  }

  /** Writes register i from a JS integer (|v| < 2^53); x0 is ignored. */
  setX(i: number, v: number): void {
    if (i === 0) return;
    this.x[2 * i] = v | 0;
    this.x[2 * i + 1] = Math.floor(v / 4294967296) | 0;
  }

  /** Sets pc from a JS integer (|v| < 2^53). */
  setPc(v: number): void {
    this.s[S.PC_LO] = v | 0;
    this.s[S.PC_HI] = Math.floor(v / 4294967296) | 0;
  }

  /** Returns pc as a JS number (exact below 2^53). */
  getPc(): number {
    return this.s[S.PC_HI]! * 4294967296 + (this.s[S.PC_LO]! >>> 0);
  }
}
