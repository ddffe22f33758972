/**
 * Code generation: one unit of guest blocks (block-decoder.ts) becomes one
 * WebAssembly function `f(st, budget, entry) -> exit code`.
 *
 * - Guest registers live in i64 locals while the function runs: those the
 *   unit uses are loaded from the hart state at entry, and those it writes
 *   are stored back at the single exit.
 * - The blocks are laid out in address order inside nested `block`s, so a
 *   jump to a later block is a plain `br` (or a fall-through), a block that
 *   jumps to itself is a wasm `loop`, and other back edges go through a
 *   `loop` with a `br_table` dispatch: jumps inside the unit never leave wasm.
 * - Each block first checks that the budget covers it (else it exits so the
 *   interpreter finishes the slice exactly), then subtracts its length.
 * - Loads and stores check the hart's current data TLB inline (one 64-bit
 *   compare of the entry's tag with the page of the access's last byte, so
 *   misaligned accesses inside a page stay inline) and call the shared slow
 *   path on a miss. A slow path that cannot complete
 *   the access (fault, MMIO) makes the block exit with EXIT_INTERP at that
 *   instruction: the interpreter re-executes it and produces the exact
 *   trap or MMIO exit, with pc, registers and instret precise.
 * - F/D arithmetic and AMOs call the interpreter's own execution units.
 *
 * The function returns an EXIT_* code; pc (S.PC) and the remaining budget
 * (S.JIT_BUDGET) are in the hart state.
 */
import { Code, Op, I32, VOID, moduleBytes } from './wasm-writer.js';
import { emitFpFast, FpFast, type FpCtx } from './codegen-fp.js';
import { opImm, op, opImm32, op32, type IntCtx } from './codegen-int.js';
import { type Block, Term, STRADDLE_OFF, straddles } from './block-decoder.js';
import { TLB_OFF_R, TLB_OFF_W, TLB_OFF_X, TLB_OFF_HOST, TLB_OFF_ADDEND, TLB_MASK, TLB_ENTRY_SHIFT } from '../mmu/tlb.js';
import {
  ADDR_SPLIT, BUDGET_CELL, EXIT_BUDGET, EXIT_CHAIN, EXIT_DISPATCH, EXIT_INTERP, FFLAGS_CELL, FLUSHED_CELL, FN_AMO,
  FN_CSR, FN_FP, FN_HUB, FN_LD_SLOW, FN_ST_SLOW, FN_ST_SPLIT, FRM_CELL, FTLB_CELL, F_BASE, G_SLOT, IBTC_BITS,
  IBTC_ENTRY, IBTC_HASH, IBTC_LINK, IBTC_MODE, IBTC_OFF, IBTC_PAGE, IBTC_PC_HI, IBTC_PC_LO, LINK_ENTRY_BITS, L_A,
  L_A32, L_B, L_BUDGET, L_CODE, L_ENTRY, L_F32, L_F64, L_FTLB, L_LO, L_NPC, L_P, L_PCBASE, L_Q, L_ST, L_T,
  L_TLB, L_CTAG, L_CADD, PC_OFF, SITE_BITS, SITE_CELL, SITE_CROSS, SITE_JALR, SITE_PAGE, TLB_CELL, type UnitCode,
  regLocal,
  TYPES, HELPERS, HELPER_TABLE, LOCALS, T_UNIT, T_HUB,
} from './unit-abi.js';

/**
 * Loads with a one-page cache of their own (hostAddr): the first MAX_CACHED
 * loads in blocks of loops of at most TIGHT_LOOP_BLOCKS blocks (a back edge
 * from block i to block t <= i, with i - t < TIGHT_LOOP_BLOCKS). Measured on
 * the process-VM workloads (run loop): crc 2.09 -> 1.45 s; with caches in
 * every loop body, gzip went from 8.0 to 8.4 s, and with 4 caches in loops
 * of up to 3 blocks, the bytecode interpreter and sort lost 2-10% (the
 * extra locals cost registers).
 */
const TIGHT_LOOP_BLOCKS = 2, MAX_CACHED = L_CTAG.length;
/** Widest jalr dispatch table (entries, one per 2 bytes of the targets' span); wider spans use compares. */
const MAX_JALR_TABLE = 1024;

/** Emits the unit's function. */
class Gen {
  readonly c: Code;
  private readonly blocks: Block[];
  private readonly index = new Map<number, number>();
  /** Registers read or written (loaded at entry) and written (stored at exit). */
  readonly used = new Set<number>();
  readonly written = new Set<number>();
  /** Labels opened inside the current block's code (if/block nesting). */
  private extra = 0;
  /** Current block: its index, instruction count, and the instruction being emitted. */
  private bi = 0;
  private n = 0;
  private k = 0;
  /** 1 while emitting a block wrapped in its own loop (the outermost label inside the block's code). */
  private selfLoop = 0;
  /** Exported global names (index = global index) and exit-site kinds. */
  readonly globals: string[] = ['u'];
  readonly sites: number[] = [];
  /** Accesses given a one-page cache of their own so far (at most L_CTAG.length per unit). */
  private cached = 0;
  /** Per block: 1 if it lies between a back edge's target and its source (a loop body, in address order). */
  private readonly inLoop: Uint8Array;
  /** Per exit site: the page offset of its jalr (-1 for other kinds). */
  readonly siteInsn: number[] = [];

  /** The translation mode the unit is for (IBTC entries must match it). */
  private readonly mode: number;
  /** Whether F/D instructions (and the inline F CSRs) are translated. */
  private readonly fpOk: boolean;


  /** What the F/D fast paths (codegen-fp.ts) use. */
  private readonly fpCtx: FpCtx;
  /** What the integer code generators (codegen-int.ts) use. */
  private readonly intCtx: IntCtx;

  /** Host page the next virtual page mapped to when the unit was planned (for an instruction straddling into it), or -1. */
  private readonly nextHost: number;

  constructor(blocks: Block[], listing: boolean, mode: number, fpOk: boolean, nextHost: number) {
    this.blocks = blocks;
    this.nextHost = nextHost;
    this.mode = mode;
    this.fpOk = fpOk;
    this.c = new Code(listing);
    blocks.forEach((b, i) => this.index.set(b.start, i));
    this.inLoop = new Uint8Array(blocks.length);
    blocks.forEach((b, i) => {
      const t = b.term === Term.BRANCH || b.term === Term.JAL ? this.index.get(b.target) : undefined;
      if (t !== undefined && t <= i && i - t < TIGHT_LOOP_BLOCKS) for (let k = t; k <= i; k++) this.inLoop[k] = 1;
    });
    this.fpCtx = { c: this.c, st: L_ST, f64: L_F64, f32: L_F32, getX: (r) => this.getX(r), setX: (r) => this.setX(r) };
    this.intCtx = { c: this.c, getX: (r) => this.getX(r), setX: (r) => this.setX(r) };
  }

  private depthLoop(): number { return this.blocks.length - 1 - this.bi + this.extra; }
  private depthExit(): number { return this.blocks.length - this.bi + this.extra; }

  private open(o: Op.block | Op.if | Op.loop, t: number = VOID): void { this.c.open(o, t); this.extra++; }
  private close(): void { this.c.op(Op.end); this.extra--; }
  /** Opens an `if` with a branch hint (V8 lays the unlikely arm out of line and keeps registers for the likely one). */
  private openIf(likely: boolean, t: number = VOID): void { this.c.openHinted(likely, t); this.extra++; }

  private getX(r: number): void {
    if (r === 0) { this.c.i64(0); return; }
    this.used.add(r);
    this.c.local(Op.local_get, regLocal(r));
  }

  /** Pops the value on the stack into guest register rd. */
  private setX(rd: number): void {
    if (rd === 0) { this.c.op(Op.drop); return; }
    this.used.add(rd); this.written.add(rd);
    this.c.local(Op.local_set, regLocal(rd));
  }

  /** Pushes pcBase + off. */
  private pcAt(off: number): void {
    this.c.local(Op.local_get, L_PCBASE);
    this.c.i64(off);
    this.c.op(Op.i64_add);
  }

  /** Leaves the function with `code`, pc = pcBase + off, refunding `refund` budget. */
  private exitAt(off: number, code: number, refund: number): void {
    this.pcAt(off);
    this.c.local(Op.local_set, L_NPC);
    this.exitNpc(code, refund);
  }

  /**
   * Leaves the function with `code` and pc already in L_NPC. An EXIT_INTERP
   * exit tells the dispatcher, in the site cell, how many instructions the
   * interpreter runs: the rest of the block (`refund`, at least 1), so that
   * translated code is re-entered at a block start.
   */
  private exitNpc(code: number, refund: number): void {
    const c = this.c;
    if (code === EXIT_INTERP) { c.local(Op.local_get, L_ST); c.i32(Math.max(1, refund)); c.mem(Op.i32_store, SITE_CELL); }
    if (refund !== 0) {
      c.local(Op.local_get, L_BUDGET); c.i32(refund); c.op(Op.i32_add); c.local(Op.local_set, L_BUDGET);
    }
    c.i32(code); c.local(Op.local_set, L_CODE);
    c.br(Op.br, this.depthExit());
  }

  /**
   * Continues at page offset `off`: inside the unit when a block starts
   * there; else through a chainable exit site — a tail call to the linked
   * unit when the site is linked (and, for another page, the fetch TLB
   * still maps the target to the page it was linked with), or the dispatcher.
   */
  private goto(off: number): void {
    const j = this.index.get(off);
    if (j !== undefined) {
      if (j === this.bi + 1 && this.extra === this.selfLoop) return; // falls through into the next block's code
      if (j > this.bi) { this.c.br(Op.br, j - this.bi - 1 + this.extra); return; } // forward: out to block j's code
      if (j === this.bi && this.selfLoop === 1) { this.c.br(Op.br, this.extra - 1); return; } // the block's own loop
      this.c.i32(j); this.c.local(Op.local_set, L_B);
      this.c.br(Op.br, this.depthLoop());
      return;
    }
    const c = this.c, cross = off < 0 || off >= 4096;
    const site = this.newSite(cross ? SITE_CROSS : SITE_PAGE);
    this.pcAt(off); c.local(Op.local_set, L_NPC);
    c.global(Op.global_get, this.gIndex('l', site)); c.local(Op.local_tee, L_P);
    this.openIf(true);
    if (cross) { this.fetchTlbCheck(site); this.openIf(true); this.chain(); this.close(); } else this.chain();
    this.close();
    this.siteExit(site);
  }

  /**
   * A jalr whose target (in L_NPC) may be one of `targets`, page offsets of
   * blocks in this unit it was seen to jump to: when it is, jump there
   * without leaving the unit (a br_table over the targets' span, or compares
   * when the span is wide). Same page offset means same page: pcBase is the
   * page this unit runs from. Other targets fall through to the IBTC.
   */
  private jalrInUnit(targets: number[]): void {
    const c = this.c, offs = [...new Set(targets)].filter((t) => this.index.has(t)).sort((a, b) => a - b);
    if (offs.length === 0) return;
    const min = offs[0]!, span = offs[offs.length - 1]! - min + 2, slots = span >>> 1;
    c.comment(`jalr in unit: ${offs.map((o) => '+0x' + o.toString(16)).join(' ')}`);
    c.local(Op.local_get, L_NPC); c.local(Op.local_get, L_PCBASE); c.op(Op.i64_sub);
    if (min !== 0) { c.i64(min); c.op(Op.i64_sub); }
    c.local(Op.local_tee, L_T); c.i64(span); c.op(Op.i64_lt_u);
    this.openIf(true);
    if (slots <= MAX_JALR_TABLE) {
      this.open(Op.block); // miss: a pc between the targets
      for (let i = 0; i < offs.length; i++) this.open(Op.block);
      // pc offsets are even (jalr clears bit 0; block starts are 2-aligned)
      const table = new Array<number>(slots).fill(offs.length);
      offs.forEach((o, i) => { table[(o - min) >>> 1] = i; });
      c.local(Op.local_get, L_T); c.op(Op.i32_wrap_i64); c.i32(1); c.op(Op.i32_shr_u);
      c.brTable(table, offs.length);
      for (const o of offs) { this.close(); this.goto(o); }
      this.close();
    } else {
      for (const o of offs) {
        c.local(Op.local_get, L_T); c.i64(o - min); c.op(Op.i64_eq);
        this.open(Op.if); this.goto(o); this.close();
      }
    }
    this.close();
  }

  /** Registers an exit site with its globals (`insn`: page offset of a jalr site's instruction); returns its number. */
  private newSite(kind: number, insn = -1): number {
    const k = this.sites.length;
    this.sites.push(kind);
    this.siteInsn.push(insn);
    if (kind !== SITE_JALR) this.globals.push(`l${k}`);
    if (kind === SITE_CROSS) this.globals.push(`p${k}`);
    return k;
  }

  private gIndex(prefix: string, site: number): number {
    return this.globals.indexOf(`${prefix}${site}`);
  }

  /** Pushes whether the fetch TLB maps pc L_NPC to the page recorded in global p{site}. */
  private fetchTlbCheck(site: number): void {
    const c = this.c;
    c.local(Op.local_get, L_NPC); c.op(Op.i32_wrap_i64); c.local(Op.local_set, L_LO);
    this.tlbEntry(L_FTLB, L_Q);
    this.fetchTagEq(L_Q);
    c.local(Op.local_get, L_Q); c.mem(Op.i32_load, TLB_OFF_HOST);
    c.global(Op.global_get, this.gIndex('p', site)); c.op(Op.i32_eq);
    c.op(Op.i32_and);
  }

  /** Sets `dst` to the TLB entry (in the TLB at local `tlb`) for the low word in L_LO. */
  private tlbEntry(tlb: number, dst: number): void {
    const c = this.c;
    // entry = tlb + ((lo >>> 12) & TLB_MASK) * TLB_ENTRY_BYTES
    c.local(Op.local_get, L_LO); c.i32(12 - TLB_ENTRY_SHIFT); c.op(Op.i32_shr_u); c.i32(TLB_MASK << TLB_ENTRY_SHIFT); c.op(Op.i32_and);
    c.local(Op.local_get, tlb); c.op(Op.i32_add); c.local(Op.local_set, dst);
  }

  /** Pushes whether the fetch tag of the TLB entry at local `entry` is pc L_NPC's page. */
  private fetchTagEq(entry: number): void {
    const c = this.c;
    c.local(Op.local_get, entry); c.mem(Op.i64_load, TLB_OFF_X);
    c.local(Op.local_get, L_NPC); c.i64(-4096); c.op(Op.i64_and); c.op(Op.i64_eq);
  }

  /**
   * Pushes whether the IBTC entry for pc L_NPC matches (pc, this unit's
   * mode, and the fetch TLB still maps pc to the entry's page); the link is
   * left in L_P.
   */
  private ibtcLookup(): void {
    const c = this.c;
    // entry = st + IBTC_OFF + ibtcIndex(lo) * IBTC_ENTRY
    c.local(Op.local_get, L_NPC); c.op(Op.i32_wrap_i64); c.local(Op.local_tee, L_LO);
    c.i32(IBTC_HASH); c.op(Op.i32_mul); c.i32(32 - IBTC_BITS); c.op(Op.i32_shr_u);
    c.i32(IBTC_ENTRY); c.op(Op.i32_mul);
    c.local(Op.local_get, L_ST); c.op(Op.i32_add); c.local(Op.local_set, L_Q);
    c.local(Op.local_get, L_Q); c.mem(Op.i32_load, IBTC_OFF + IBTC_PC_LO); c.local(Op.local_get, L_LO); c.op(Op.i32_eq);
    c.local(Op.local_get, L_Q); c.mem(Op.i32_load, IBTC_OFF + IBTC_PC_HI);
    c.local(Op.local_get, L_NPC); c.i64(32); c.op(Op.i64_shr_u); c.op(Op.i32_wrap_i64); c.op(Op.i32_eq); c.op(Op.i32_and);
    c.local(Op.local_get, L_Q); c.mem(Op.i32_load, IBTC_OFF + IBTC_MODE); c.i32(this.mode + 1); c.op(Op.i32_eq); c.op(Op.i32_and);
    this.openIf(true, I32);
    c.local(Op.local_get, L_Q); c.mem(Op.i32_load, IBTC_OFF + IBTC_LINK); c.local(Op.local_set, L_P);
    c.local(Op.local_get, L_Q); c.mem(Op.i32_load, IBTC_OFF + IBTC_PAGE); c.local(Op.local_set, L_Q);
    // fetch TLB check against the entry's page (in L_Q)
    this.tlbEntry(L_FTLB, L_A32);
    this.fetchTagEq(L_A32);
    c.local(Op.local_get, L_A32); c.mem(Op.i32_load, TLB_OFF_HOST); c.local(Op.local_get, L_Q); c.op(Op.i32_eq); c.op(Op.i32_and);
    c.op(Op.else);
    c.i32(0);
    this.close();
  }

  /** Leaves through the exit sequence into a tail call of the unit linked in L_P, at pc L_NPC. */
  private chain(): void {
    this.c.i32(EXIT_CHAIN); this.c.local(Op.local_set, L_CODE);
    this.c.br(Op.br, this.depthExit());
  }

  /** Leaves to the dispatcher at pc L_NPC, telling it which site to link. */
  private siteExit(site: number): void {
    const c = this.c;
    c.local(Op.local_get, L_ST);
    c.global(Op.global_get, G_SLOT); c.i32(SITE_BITS); c.op(Op.i32_shl); c.i32(site); c.op(Op.i32_or);
    c.mem(Op.i32_store, SITE_CELL);
    this.exitNpc(EXIT_DISPATCH, 0);
  }

  /** The whole function body (without the register prologue, added by `finish`). */
  emitBody(): void {
    const c = this.c, n = this.blocks.length;
    c.local(Op.local_get, L_ENTRY); c.local(Op.local_set, L_B);
    c.open(Op.block); // $exit
    c.open(Op.loop);
    for (let i = n - 1; i >= 0; i--) c.open(Op.block);
    c.local(Op.local_get, L_B);
    c.brTable(this.blocks.map((_, i) => i), 0);
    for (let i = 0; i < n; i++) {
      c.op(Op.end);
      this.bi = i;
      this.emitBlock(this.blocks[i]!);
    }
    c.op(Op.end); // loop
    c.op(Op.end); // $exit
  }

  private emitBlock(b: Block): void {
    const c = this.c, n = b.insns.length;
    this.n = n;
    c.comment(`block ${this.bi} at +0x${b.start.toString(16)}: ${n} insns`);
    // A block that jumps to itself gets a wasm loop around its code, so the back edge is a direct br.
    this.selfLoop = (b.term === Term.BRANCH || b.term === Term.JAL) && b.target === b.start ? 1 : 0;
    if (this.selfLoop === 1) this.open(Op.loop);
    if (n > 0) {
      c.local(Op.local_get, L_BUDGET); c.i32(n); c.op(Op.i32_lt_s);
      this.openIf(false); this.exitAt(b.start, EXIT_BUDGET, 0); this.close();
      c.local(Op.local_get, L_BUDGET); c.i32(n); c.op(Op.i32_sub); c.local(Op.local_set, L_BUDGET);
    }
    const last = b.term === Term.BRANCH || b.term === Term.JAL || b.term === Term.JALR ? n - 1 : n;
    const guardAt = straddles(b) ? n - 1 : -1;
    for (let k = 0; k < last; k++) {
      this.k = k;
      if (k === guardAt) this.straddleGuard();
      this.emitInsn(b.insns[k]!, b.offs[k]!, b.offs[k]! + b.lens[k]!);
    }
    this.k = n - 1;
    if (last < n && guardAt === n - 1) this.straddleGuard();
    const lastOff = n > 0 ? b.offs[n - 1]! : b.start;
    switch (b.term) {
      case Term.BRANCH: this.emitBranch(b.insns[n - 1]!, b.target, b.end); break;
      case Term.JAL: {
        const rd = (b.insns[n - 1]! >>> 7) & 31;
        if (rd !== 0) { this.pcAt(b.end); this.setX(rd); }
        this.goto(b.target);
        break;
      }
      case Term.JALR: {
        const insn = b.insns[n - 1]!, rd = (insn >>> 7) & 31, rs1 = (insn >>> 15) & 31;
        this.getX(rs1); c.i64(insn >> 20); c.op(Op.i64_add); c.i64(-2); c.op(Op.i64_and); c.local(Op.local_set, L_NPC);
        if (rd !== 0) { this.pcAt(b.end); this.setX(rd); }
        if (b.jalrTargets !== undefined) this.jalrInUnit(b.jalrTargets);
        // The hart's indirect-branch cache (IBTC): chain when it maps the target pc, in this mode, to a unit.
        const site = this.newSite(SITE_JALR, b.offs[n - 1]!);
        this.ibtcLookup();
        this.openIf(true);
        this.chain();
        this.close();
        this.siteExit(site);
        break;
      }
      case Term.FALL: this.goto(b.end); break;
      default: this.exitAt(b.end, EXIT_INTERP, 0); break; // INTERP
    }
    if (this.selfLoop === 1) this.close();
    this.selfLoop = 0;
    c.comment(`(from +0x${lastOff.toString(16)})`);
  }

  private emitBranch(insn: number, target: number, fall: number): void {
    const c = this.c, r1 = (insn >>> 15) & 31, r2 = (insn >>> 20) & 31;
    this.getX(r1); this.getX(r2);
    switch ((insn >>> 12) & 7) {
      case 0: c.op(Op.i64_eq); break;
      case 1: c.op(Op.i64_ne); break;
      case 4: c.op(Op.i64_lt_s); break;
      case 5: c.op(Op.i64_ge_s); break;
      case 6: c.op(Op.i64_lt_u); break;
      default: c.op(Op.i64_ge_u); break;
    }
    this.open(Op.if); this.goto(target); this.close();
    this.goto(fall);
  }

  /**
   * Before an instruction that straddles into the next page: unless the
   * fetch TLB still maps the next virtual page to the host page its upper
   * half was read from, the interpreter runs it (and raises any fetch fault).
   */
  private straddleGuard(): void {
    const c = this.c;
    if (this.nextHost < 0) throw new Error('codegen: a straddling instruction without its next page');
    this.pcAt(4096); c.local(Op.local_tee, L_NPC); c.op(Op.i32_wrap_i64); c.local(Op.local_set, L_LO);
    this.tlbEntry(L_FTLB, L_Q);
    this.fetchTagEq(L_Q);
    c.local(Op.local_get, L_Q); c.mem(Op.i32_load, TLB_OFF_HOST); c.i32(this.nextHost); c.op(Op.i32_eq); c.op(Op.i32_and);
    c.op(Op.i32_eqz);
    this.openIf(false); this.bail(STRADDLE_OFF); this.close();
  }

  /** Side exit for the current instruction at page offset `off`: the interpreter runs it. */
  private bail(off: number): void {
    this.exitAt(off, EXIT_INTERP, this.n - this.k);
  }

  private emitInsn(insn: number, off: number, next: number): void {
    const rd = (insn >>> 7) & 31, r1 = (insn >>> 15) & 31, r2 = (insn >>> 20) & 31, f3 = (insn >>> 12) & 7;
    switch ((insn >>> 2) & 31) {
      case 0x04: if (rd !== 0) opImm(this.intCtx, insn, rd, r1, f3); break;
      case 0x0c: if (rd !== 0) op(this.intCtx, insn, rd, r1, r2, f3); break;
      case 0x06: if (rd !== 0) opImm32(this.intCtx, insn, rd, r1, f3); break;
      case 0x0e: if (rd !== 0) op32(this.intCtx, insn, rd, r1, r2, f3); break;
      case 0x0d: if (rd !== 0) { this.c.i64(insn & 0xfffff000); this.setX(rd); } break; // LUI
      case 0x05: if (rd !== 0) { this.pcAt(off); this.c.i64(insn & 0xfffff000); this.c.op(Op.i64_add); this.setX(rd); } break;
      case 0x00: this.load(insn, rd, r1, f3, off, false); break;
      case 0x01: this.load(insn, rd, r1, f3, off, true); break;
      case 0x08: this.store(insn, r1, r2, f3, off, next, false); break;
      case 0x09: this.store(insn, r1, r2, f3, off, next, true); break;
      case 0x14: case 0x10: case 0x11: case 0x12: case 0x13: this.fpHelper(insn, rd, r1, off); break;
      case 0x0b: this.amoHelper(insn, rd, r1, r2, off, next); break;
      case 0x03: this.c.comment('fence'); break;
      case 0x1c: {
        const csr = insn >>> 20;
        if (this.fpOk && csr >= 1 && csr <= 3) this.fcsr(insn, rd, r1, f3); else this.csrHelper(insn, rd, r1, f3, off, next);
        break;
      }
      default: throw new Error(`codegen: untranslatable 0x${(insn >>> 0).toString(16)}`);
    }
  }

  /**
   * Leaves the host address of a `size`-byte access at guest address L_A
   * in L_P: the inline TLB check (tlbHit: tag for `tagOff`, the high word,
   * the access inside the page), else the slow path
   * `slowFn`. A failed slow path exits to the interpreter, except that a
   * store's ADDR_SPLIT is left in L_P for the caller. The first loads of a
   * tight loop check their own one-page cache first (see MAX_CACHED), which
   * a TLB hit refills.
   */
  private hostAddr(size: number, tagOff: number, slowFn: number, off: number, allowSplit: boolean): void {
    const c = this.c;
    const s = this.inLoop[this.bi] === 1 && this.cached < MAX_CACHED ? this.cached++ : -1;
    if (s >= 0) {
      // This access's own one-page cache (see unit-abi.ts L_CTAG): a hit needs the access's first
      // byte in the cached page (never -1, its value before the first fill) and, for a multi-byte
      // access, its last byte too.
      c.local(Op.local_get, L_A); c.i64(-4096); c.op(Op.i64_and); c.local(Op.local_tee, L_T);
      c.local(Op.local_get, L_CTAG[s]!); c.op(Op.i64_eq);
      if (size > 1) {
        c.local(Op.local_get, L_A); c.op(Op.i32_wrap_i64); c.i32(0xfff); c.op(Op.i32_and); c.i32(4097 - size); c.op(Op.i32_lt_u);
        c.op(Op.i32_and);
      }
      this.openIf(true);
      c.local(Op.local_get, L_A); c.op(Op.i32_wrap_i64); c.local(Op.local_get, L_CADD[s]!); c.op(Op.i32_add); c.local(Op.local_set, L_P);
      c.op(Op.else);
    }
    this.tlbHit(size, tagOff);
    this.openIf(true);
    if (s >= 0) {
      c.local(Op.local_get, L_P); c.mem(Op.i32_load, TLB_OFF_ADDEND); c.local(Op.local_set, L_CADD[s]!);
      c.local(Op.local_get, L_T); c.local(Op.local_set, L_CTAG[s]!);
    }
    this.hitAddr(); c.local(Op.local_set, L_P);
    c.op(Op.else);
    c.local(Op.local_get, L_LO);
    c.local(Op.local_get, L_A); c.i64(32); c.op(Op.i64_shr_u); c.op(Op.i32_wrap_i64);
    c.i32(size); callHelper(c, slowFn); c.local(Op.local_tee, L_P);
    c.i32(0); c.op(Op.i32_lt_s);
    if (allowSplit) { c.local(Op.local_get, L_P); c.i32(ADDR_SPLIT); c.op(Op.i32_ne); c.op(Op.i32_and); }
    this.openIf(false); this.bail(off); this.close();
    this.close();
    if (s >= 0) this.close();
  }

  /**
   * The inline TLB check for a `size`-byte access at guest address L_A:
   * pushes the hit condition, then an `if` arm can push the host address
   * with `hitAddr`. Leaves the low word in L_LO and the entry in L_P.
   * One i64 compare covers the page tag, the high word and "the access does
   * not cross the page": the entry's tag must equal the page of the access's
   * last byte (misaligned accesses inside a page stay on the fast path, as
   * RISC-V Linux user code may use them).
   */
  private tlbHit(size: number, tagOff: number): void {
    const c = this.c;
    c.local(Op.local_get, L_A); c.op(Op.i32_wrap_i64); c.local(Op.local_set, L_LO);
    this.tlbEntry(L_TLB, L_P);
    c.local(Op.local_get, L_P); c.mem(Op.i64_load, tagOff);
    c.local(Op.local_get, L_A);
    if (size > 1) { c.i64(size - 1); c.op(Op.i64_add); }
    c.i64(-4096); c.op(Op.i64_and); c.op(Op.i64_eq);
  }

  /** Pushes the host address of a TLB hit (entry in L_P, low word in L_LO): the entry's addend plus the low word. */
  private hitAddr(): void {
    const c = this.c;
    c.local(Op.local_get, L_P); c.mem(Op.i32_load, TLB_OFF_ADDEND);
    c.local(Op.local_get, L_LO); c.op(Op.i32_add);
  }

  /** Pushes rs1 + imm and keeps it in L_A. */
  private effAddr(r1: number, imm: number): void {
    this.getX(r1);
    if (imm !== 0) { this.c.i64(imm); this.c.op(Op.i64_add); }
    this.c.local(Op.local_set, L_A);
  }

  private load(insn: number, rd: number, r1: number, f3: number, off: number, fp: boolean): void {
    const c = this.c;
    const size = fp ? (f3 === 3 ? 8 : 4) : 1 << (f3 & 3);
    this.effAddr(r1, insn >> 20);
    this.hostAddr(size, TLB_OFF_R, FN_LD_SLOW, off, false);
    if (fp) {
      c.local(Op.local_get, L_ST);
      c.local(Op.local_get, L_P);
      if (f3 === 3) c.mem(Op.i64_load, 0);
      else { c.mem(Op.i64_load32_u, 0); c.i64w(0, -1); c.op(Op.i64_or); } // NaN-box (F spec §12.2)
      c.mem(Op.i64_store, F_BASE + 8 * rd);
      return;
    }
    c.local(Op.local_get, L_P);
    switch (f3) {
      case 0: c.mem(Op.i64_load8_s, 0); break;
      case 1: c.mem(Op.i64_load16_s, 0); break;
      case 2: c.mem(Op.i64_load32_s, 0); break;
      case 3: c.mem(Op.i64_load, 0); break;
      case 4: c.mem(Op.i64_load8_u, 0); break;
      case 5: c.mem(Op.i64_load16_u, 0); break;
      default: c.mem(Op.i64_load32_u, 0); break;
    }
    this.setX(rd);
  }

  /** Pushes the store value (i64) of a store from x[r2] or f[r2]. */
  private storeValue(r2: number, fp: boolean): void {
    if (fp) { this.c.local(Op.local_get, L_ST); this.c.mem(Op.i64_load, F_BASE + 8 * r2); } else this.getX(r2);
  }

  private store(insn: number, r1: number, r2: number, f3: number, off: number, next: number, fp: boolean): void {
    const c = this.c, size = 1 << f3;
    const imm = ((insn >> 25) << 5) | ((insn >>> 7) & 0x1f);
    const st = size === 8 ? Op.i64_store : size === 4 ? Op.i64_store32 : size === 2 ? Op.i64_store16 : Op.i64_store8;
    this.effAddr(r1, imm);
    this.tlbHit(size, TLB_OFF_W);
    this.openIf(true);
    this.hitAddr(); this.storeValue(r2, fp); c.mem(st, 0);
    c.op(Op.else);
    this.slowStore(size, st, r2, off, next, fp);
    this.close();
  }

  /** The store slow path (inside the fast path's else arm). */
  private slowStore(size: number, st: Op, r2: number, off: number, next: number, fp: boolean): void {
    const c = this.c;
    c.local(Op.local_get, L_LO);
    c.local(Op.local_get, L_A); c.i64(32); c.op(Op.i64_shr_u); c.op(Op.i32_wrap_i64);
    c.i32(size); callHelper(c, FN_ST_SLOW); c.local(Op.local_tee, L_P);
    c.i32(0); c.op(Op.i32_ge_s);
    this.openIf(true);
    c.local(Op.local_get, L_P); this.storeValue(r2, fp); c.mem(st, 0);
    c.op(Op.else);
    c.local(Op.local_get, L_P); c.i32(ADDR_SPLIT); c.op(Op.i32_ne);
    this.openIf(false); this.bail(off); this.close();
    c.local(Op.local_get, L_LO);
    c.local(Op.local_get, L_A); c.i64(32); c.op(Op.i64_shr_u); c.op(Op.i32_wrap_i64);
    c.i32(size);
    this.storeValue(r2, fp); c.local(Op.local_tee, L_T); c.op(Op.i32_wrap_i64);
    c.local(Op.local_get, L_T); c.i64(32); c.op(Op.i64_shr_u); c.op(Op.i32_wrap_i64);
    callHelper(c, FN_ST_SPLIT);
    this.close();
    this.checkFlushed(next);
  }

  /** After a slow-path write: if it dropped translated code, leave (this unit may be stale). */
  private checkFlushed(next: number): void {
    const c = this.c;
    c.local(Op.local_get, L_ST); c.mem(Op.i32_load, FLUSHED_CELL);
    this.openIf(false);
    c.local(Op.local_get, L_ST); c.i32(0); c.mem(Op.i32_store, FLUSHED_CELL);
    this.exitAt(next, EXIT_DISPATCH, this.n - this.k - 1);
    this.close();
  }

  /**
   * csrrw/csrrs/csrrc[i] on fflags (0x001), frm (0x002) or fcsr (0x003)
   * (F spec §11.2): they live in the hart state's scalar block. Translated
   * only while FS is Dirty, so no mstatus update is needed.
   */
  private fcsr(insn: number, rd: number, r1: number, f3: number): void {
    const c = this.c, csr = insn >>> 20, op = f3 & 3;
    const readOld = (): void => {
      if (csr === 1) { c.local(Op.local_get, L_ST); c.mem(Op.i32_load, FFLAGS_CELL); }
      else if (csr === 2) { c.local(Op.local_get, L_ST); c.mem(Op.i32_load, FRM_CELL); }
      else {
        c.local(Op.local_get, L_ST); c.mem(Op.i32_load, FRM_CELL); c.i32(5); c.op(Op.i32_shl);
        c.local(Op.local_get, L_ST); c.mem(Op.i32_load, FFLAGS_CELL); c.op(Op.i32_or);
      }
    };
    readOld(); c.local(Op.local_set, L_Q);
    if (op === 1 || r1 !== 0) {
      // new value into L_LO
      if (f3 >= 5) c.i32(r1); else { this.getX(r1); c.op(Op.i32_wrap_i64); }
      if (op === 2) { c.local(Op.local_get, L_Q); c.op(Op.i32_or); }
      else if (op === 3) { c.i32(-1); c.op(Op.i32_xor); c.local(Op.local_get, L_Q); c.op(Op.i32_and); }
      c.local(Op.local_set, L_LO);
      if (csr !== 2) { c.local(Op.local_get, L_ST); c.local(Op.local_get, L_LO); c.i32(0x1f); c.op(Op.i32_and); c.mem(Op.i32_store, FFLAGS_CELL); }
      if (csr === 2) { c.local(Op.local_get, L_ST); c.local(Op.local_get, L_LO); c.i32(7); c.op(Op.i32_and); c.mem(Op.i32_store, FRM_CELL); }
      if (csr === 3) {
        c.local(Op.local_get, L_ST); c.local(Op.local_get, L_LO); c.i32(5); c.op(Op.i32_shr_u); c.i32(7); c.op(Op.i32_and);
        c.mem(Op.i32_store, FRM_CELL);
      }
    }
    if (rd !== 0) { c.local(Op.local_get, L_Q); c.op(Op.i64_extend_i32_u); this.setX(rd); }
  }

  /**
   * Any other Zicsr instruction, through the engine's `csr(insn, budget)`
   * helper (the CSR file's own read/write): the budget left lets it make
   * instret exact for cycle/instret reads. A result of 1 means the write
   * changed privileged state (interrupt enables, satp, …): the unit leaves
   * so the vCPU re-evaluates; -1 means illegal, and the interpreter re-runs
   * the instruction to raise the trap.
   */
  private csrHelper(insn: number, rd: number, r1: number, f3: number, off: number, next: number): void {
    const c = this.c;
    if (f3 < 4) this.spill(r1);
    c.i32(insn);
    c.local(Op.local_get, L_BUDGET); c.i32(this.n - this.k); c.op(Op.i32_add);
    callHelper(c, FN_CSR); c.local(Op.local_tee, L_Q);
    c.i32(0); c.op(Op.i32_lt_s);
    this.openIf(false); this.bail(off); this.close();
    this.reload(rd);
    c.local(Op.local_get, L_Q);
    this.openIf(false); this.exitAt(next, EXIT_DISPATCH, this.n - this.k - 1); this.close();
  }

  /** Spills x[r] to the hart state (a helper reads it there). */
  private spill(r: number): void {
    if (r === 0) return;
    this.used.add(r);
    this.c.local(Op.local_get, L_ST); this.c.local(Op.local_get, regLocal(r)); this.c.mem(Op.i64_store, 8 * r);
  }

  /** Reloads x[r] from the hart state (a helper wrote it there). */
  private reload(r: number): void {
    if (r === 0) return;
    this.used.add(r); this.written.add(r);
    this.c.local(Op.local_get, L_ST); this.c.mem(Op.i64_load, 8 * r); this.c.local(Op.local_set, regLocal(r));
  }

  private fpHelper(insn: number, rd: number, r1: number, off: number): void {
    const kind = emitFpFast(this.fpCtx, insn);
    if (kind === FpFast.DONE) return;
    if (kind === FpFast.COND) { this.c.op(Op.i32_eqz); this.open(Op.if); }
    this.fpCall(insn, rd, r1, off);
    if (kind === FpFast.COND) this.close();
  }

  /** The F/D instruction through the interpreter's execution unit (exact softfloat). */
  private fpCall(insn: number, rd: number, r1: number, off: number): void {
    const c = this.c, f5 = insn >>> 27, isOpFp = (insn & 0x7f) === 0x53;
    // Integer source: fcvt.{s,d}.{w,l}[u], fmv.{w,d}.x. Integer destination: fcvt.{w,l}[u].{s,d}, fmv.x.*, fclass, compares.
    const intSrc = isOpFp && (f5 === 0x1a || f5 === 0x1e);
    const intDst = isOpFp && (f5 === 0x18 || f5 === 0x1c || f5 === 0x14);
    if (intSrc) this.spill(r1);
    c.i32(insn); callHelper(c, FN_FP);
    c.i32(0); c.op(Op.i32_lt_s);
    this.openIf(false); this.bail(off); this.close();
    if (intDst) this.reload(rd);
  }

  private amoHelper(insn: number, rd: number, r1: number, r2: number, off: number, next: number): void {
    const c = this.c;
    this.spill(r1); this.spill(r2);
    c.i32(insn); callHelper(c, FN_AMO);
    c.i32(0); c.op(Op.i32_ne);
    this.openIf(false); this.bail(off); this.close();
    this.reload(rd);
    this.checkFlushed(next);
  }

  /** Prepends the prologue (pcBase, TLB base, register loads) and appends the exit sequence. */
  finish(sharedMemory = false): UnitCode {
    const body = this.c;
    const pro = new Code(body.listing !== null);
    pro.local(Op.local_get, L_ST); pro.mem(Op.i64_load, PC_OFF); pro.i64(-4096); pro.op(Op.i64_and);
    pro.local(Op.local_set, L_PCBASE);
    pro.local(Op.local_get, L_ST); pro.mem(Op.i32_load, TLB_CELL); pro.local(Op.local_set, L_TLB);
    pro.local(Op.local_get, L_ST); pro.mem(Op.i32_load, FTLB_CELL); pro.local(Op.local_set, L_FTLB);
    for (let s = 0; s < this.cached; s++) { pro.i64(-1); pro.local(Op.local_set, L_CTAG[s]!); } // no page yet
    const used = [...this.used].sort((a, b) => a - b), written = [...this.written].sort((a, b) => a - b);
    for (const r of used) { pro.local(Op.local_get, L_ST); pro.mem(Op.i64_load, 8 * r); pro.local(Op.local_set, regLocal(r)); }
    const epi = new Code(body.listing !== null);
    epi.comment('exit');
    for (const r of written) { epi.local(Op.local_get, L_ST); epi.local(Op.local_get, regLocal(r)); epi.mem(Op.i64_store, 8 * r); }
    epi.local(Op.local_get, L_ST); epi.local(Op.local_get, L_NPC); epi.mem(Op.i64_store, PC_OFF);
    epi.local(Op.local_get, L_ST); epi.local(Op.local_get, L_BUDGET); epi.mem(Op.i32_store, BUDGET_CELL);
    epi.local(Op.local_get, L_CODE); epi.i32(EXIT_CHAIN); epi.op(Op.i32_eq);
    epi.open(Op.if);
    epi.local(Op.local_get, L_ST); epi.local(Op.local_get, L_BUDGET);
    epi.local(Op.local_get, L_P); epi.i32((1 << LINK_ENTRY_BITS) - 1); epi.op(Op.i32_and);
    epi.local(Op.local_get, L_P); epi.i32(LINK_ENTRY_BITS); epi.op(Op.i32_shr_u);
    epi.i32(FN_HUB); epi.tailCallIndirect(T_HUB);
    epi.op(Op.end);
    epi.local(Op.local_get, L_CODE);
    epi.op(Op.end);
    const all = new Code(false);
    all.bytes(pro.view()); all.bytes(body.view()); all.bytes(epi.view());
    const hints = body.hints.map((v, i) => (i & 1) === 0 ? v + pro.len : v);
    const bytes = moduleBytes(TYPES, HELPER_TABLE, T_UNIT, LOCALS, all.view(), this.globals, hints, sharedMemory);
    const listing = body.listing === null ? null : [...pro.listing!, ...body.listing, ...epi.listing!];
    return { bytes, listing, sites: this.sites, siteInsn: this.siteInsn };
  }
}

/** Calls helper `fn` through the helper table. */
function callHelper(c: Code, fn: number): void {
  c.i32(fn);
  c.callIndirect(HELPERS[fn]!.type);
}

/**
 * Generates the WebAssembly module for a unit's blocks (the first is the hot
 * entry). `nextHost` is the host page an instruction straddling the page end
 * takes its upper half from (planUnit's `next`), or -1. `sharedMemory`: the
 * guest memory is a shared WebAssembly.Memory (a host's frame pool).
 */
export function generateUnit(blocks: Block[], listing = false, mode = 0, fpOk = true, nextHost = -1, sharedMemory = false): UnitCode {
  const g = new Gen(blocks, listing, mode, fpOk, nextHost);
  g.emitBody();
  return g.finish(sharedMemory);
}
