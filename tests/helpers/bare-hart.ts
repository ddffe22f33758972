/**
 * A hart over flat RAM for unit tests: load words at 0x1000, set registers,
 * run until ecall or a fault, read registers back as BigInt for easy
 * 64-bit assertions (tests only; the core never uses BigInt).
 */
import { GuestRam } from '../../src/memory/guest-ram.js';
import { Hart, ExitReason } from '../../src/cpu/hart.js';
import { FlatTranslator } from '../../src/mmu/flat-translator.js';
import { run } from '../../src/cpu/interpreter.js';
import { S } from '../../src/cpu/hart-state.js';

/** Where test code is placed. */
export const CODE = 0x1000;
/** A data area tests may use. */
export const DATA = 0x8000;

/** A hart with 64 KiB of identity-mapped RAM at address 0. */
export class BareHart {
  readonly ram = new GuestRam(65536);
  readonly hart = new Hart(this.ram, new FlatTranslator(this.ram, 0));

  /** Sets register i from a BigInt (two's complement, 64 bits). */
  set(i: number, v: bigint): void {
    const m = BigInt.asUintN(64, v);
    this.hart.st.x[2 * i] = Number(m & 0xffffffffn) | 0;
    this.hart.st.x[2 * i + 1] = Number(m >> 32n) | 0;
  }

  /** Register i as a signed BigInt. */
  get(i: number): bigint {
    const lo = BigInt(this.hart.st.x[2 * i]! >>> 0), hi = BigInt(this.hart.st.x[2 * i + 1]! >>> 0);
    return BigInt.asIntN(64, (hi << 32n) | lo);
  }

  /** Register i as an unsigned BigInt. */
  getU(i: number): bigint { return BigInt.asUintN(64, this.get(i)); }

  /** Writes 32-bit words (or, with `half`, 16-bit parcels) at CODE and runs to the first exit. */
  exec(words: number[], half = false): { exit: ExitReason; cause: number; pc: number; tval: bigint } {
    let a = CODE;
    for (const w of words) {
      if (half) { this.ram.dv.setUint16(a, w, true); a += 2; } else { this.ram.dv.setUint32(a, w >>> 0, true); a += 4; }
    }
    this.hart.tlb.flushAll();
    this.hart.st.setPc(CODE);
    const exit = run(this.hart, 100000);
    const s = this.hart.st.s;
    return {
      exit, cause: s[S.EXIT_CAUSE]!, pc: this.hart.st.getPc(),
      tval: (BigInt(s[S.EXIT_TVAL_HI]! >>> 0) << 32n) | BigInt(s[S.EXIT_TVAL_LO]! >>> 0),
    };
  }
}
