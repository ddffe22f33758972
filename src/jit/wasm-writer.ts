/**
 * A small WebAssembly binary writer: just what the translator emits.
 *
 * `Code` appends instructions to a function body; when asked it also keeps
 * a text listing (one line per instruction, WAT-like mnemonics) for the
 * golden-file tests and for debugging. `moduleBytes` wraps one function
 * body into a module with the translator's fixed imports.
 *
 * Encodings follow the WebAssembly core spec §5 "Binary format":
 * LEB128 integers (§5.2.2), instruction opcodes (§5.4), module sections
 * (§5.5).
 */

/** Value types (§5.3.1). */
export const I32 = 0x7f, I64 = 0x7e, F32 = 0x7d, F64 = 0x7c;
/** The empty block type (§5.4.1). */
export const VOID = 0x40;

/** Opcodes (§5.4). */
export const enum Op {
  unreachable = 0x00, block = 0x02, loop = 0x03, if = 0x04, else = 0x05, end = 0x0b, br = 0x0c, br_if = 0x0d,
  br_table = 0x0e, return = 0x0f, call = 0x10, call_indirect = 0x11, return_call = 0x12, return_call_indirect = 0x13, drop = 0x1a, select = 0x1b,
  global_get = 0x23, global_set = 0x24,
  local_get = 0x20, local_set = 0x21, local_tee = 0x22,
  i32_load = 0x28, i64_load = 0x29, i64_load8_s = 0x30, i64_load8_u = 0x31, i64_load16_s = 0x32,
  i64_load16_u = 0x33, i64_load32_s = 0x34, i64_load32_u = 0x35,
  i32_store = 0x36, i64_store = 0x37, i64_store8 = 0x3c, i64_store16 = 0x3d, i64_store32 = 0x3e,
  i32_const = 0x41, i64_const = 0x42, f32_const = 0x43, f64_const = 0x44,
  i32_eqz = 0x45, i32_eq = 0x46, i32_ne = 0x47, i32_lt_s = 0x48, i32_lt_u = 0x49, i32_gt_s = 0x4a, i32_gt_u = 0x4b,
  i32_le_s = 0x4c, i32_le_u = 0x4d, i32_ge_s = 0x4e, i32_ge_u = 0x4f,
  i64_eqz = 0x50, i64_eq = 0x51, i64_ne = 0x52, i64_lt_s = 0x53, i64_lt_u = 0x54, i64_gt_s = 0x55, i64_gt_u = 0x56,
  i64_le_s = 0x57, i64_le_u = 0x58, i64_ge_s = 0x59, i64_ge_u = 0x5a,
  i32_clz = 0x67, i32_ctz = 0x68, i32_popcnt = 0x69, i32_add = 0x6a, i32_sub = 0x6b, i32_mul = 0x6c,
  i32_div_s = 0x6d, i32_div_u = 0x6e, i32_rem_s = 0x6f, i32_rem_u = 0x70, i32_and = 0x71, i32_or = 0x72,
  i32_xor = 0x73, i32_shl = 0x74, i32_shr_s = 0x75, i32_shr_u = 0x76, i32_rotl = 0x77, i32_rotr = 0x78,
  i64_clz = 0x79, i64_ctz = 0x7a, i64_popcnt = 0x7b, i64_add = 0x7c, i64_sub = 0x7d, i64_mul = 0x7e,
  i64_div_s = 0x7f, i64_div_u = 0x80, i64_rem_s = 0x81, i64_rem_u = 0x82, i64_and = 0x83, i64_or = 0x84,
  i64_xor = 0x85, i64_shl = 0x86, i64_shr_s = 0x87, i64_shr_u = 0x88, i64_rotl = 0x89, i64_rotr = 0x8a,
  f32_load = 0x2a, f64_load = 0x2b, f32_store = 0x38, f64_store = 0x39,
  f32_eq = 0x5b, f32_lt = 0x5d, f32_gt = 0x5e, f32_le = 0x5f,
  f64_eq = 0x61, f64_lt = 0x63, f64_gt = 0x64, f64_le = 0x65,
  f32_abs = 0x8b, f32_sqrt = 0x91, f32_add = 0x92, f32_sub = 0x93, f32_mul = 0x94, f32_div = 0x95,
  f64_abs = 0x99, f64_neg = 0x9a, f64_sqrt = 0x9f, f64_add = 0xa0, f64_sub = 0xa1, f64_mul = 0xa2, f64_div = 0xa3,
  f64_convert_i32_s = 0xb7, f64_convert_i32_u = 0xb8, i64_reinterpret_f64 = 0xbd, f64_reinterpret_i64 = 0xbf,
  i32_wrap_i64 = 0xa7, i64_extend_i32_s = 0xac, i64_extend_i32_u = 0xad,
  i64_extend8_s = 0xc2, i64_extend16_s = 0xc3, i64_extend32_s = 0xc4,
}

/** Mnemonics for the listing, indexed by opcode. */
const NAMES: Record<number, string> = {
  0x00: 'unreachable', 0x02: 'block', 0x03: 'loop', 0x04: 'if', 0x05: 'else', 0x0b: 'end', 0x0c: 'br',
  0x0d: 'br_if', 0x0e: 'br_table', 0x0f: 'return', 0x10: 'call', 0x11: 'call_indirect', 0x12: 'return_call', 0x13: 'return_call_indirect', 0x1a: 'drop',
  0x1b: 'select', 0x23: 'global.get', 0x24: 'global.set',
  0x20: 'local.get', 0x21: 'local.set', 0x22: 'local.tee',
  0x28: 'i32.load', 0x29: 'i64.load', 0x30: 'i64.load8_s', 0x31: 'i64.load8_u', 0x32: 'i64.load16_s',
  0x33: 'i64.load16_u', 0x34: 'i64.load32_s', 0x35: 'i64.load32_u', 0x36: 'i32.store', 0x37: 'i64.store',
  0x3c: 'i64.store8', 0x3d: 'i64.store16', 0x3e: 'i64.store32', 0x41: 'i32.const', 0x42: 'i64.const',
  0x45: 'i32.eqz', 0x46: 'i32.eq', 0x47: 'i32.ne', 0x48: 'i32.lt_s', 0x49: 'i32.lt_u', 0x4a: 'i32.gt_s',
  0x4b: 'i32.gt_u', 0x4c: 'i32.le_s', 0x4d: 'i32.le_u', 0x4e: 'i32.ge_s', 0x4f: 'i32.ge_u',
  0x50: 'i64.eqz', 0x51: 'i64.eq', 0x52: 'i64.ne', 0x53: 'i64.lt_s', 0x54: 'i64.lt_u', 0x55: 'i64.gt_s',
  0x56: 'i64.gt_u', 0x57: 'i64.le_s', 0x58: 'i64.le_u', 0x59: 'i64.ge_s', 0x5a: 'i64.ge_u',
  0x67: 'i32.clz', 0x68: 'i32.ctz', 0x69: 'i32.popcnt', 0x6a: 'i32.add', 0x6b: 'i32.sub', 0x6c: 'i32.mul',
  0x6d: 'i32.div_s', 0x6e: 'i32.div_u', 0x6f: 'i32.rem_s', 0x70: 'i32.rem_u', 0x71: 'i32.and', 0x72: 'i32.or',
  0x73: 'i32.xor', 0x74: 'i32.shl', 0x75: 'i32.shr_s', 0x76: 'i32.shr_u', 0x77: 'i32.rotl', 0x78: 'i32.rotr',
  0x79: 'i64.clz', 0x7a: 'i64.ctz', 0x7b: 'i64.popcnt', 0x7c: 'i64.add', 0x7d: 'i64.sub', 0x7e: 'i64.mul',
  0x7f: 'i64.div_s', 0x80: 'i64.div_u', 0x81: 'i64.rem_s', 0x82: 'i64.rem_u', 0x83: 'i64.and', 0x84: 'i64.or',
  0x85: 'i64.xor', 0x86: 'i64.shl', 0x87: 'i64.shr_s', 0x88: 'i64.shr_u', 0x89: 'i64.rotl', 0x8a: 'i64.rotr',
  0x2a: 'f32.load', 0x2b: 'f64.load', 0x38: 'f32.store', 0x39: 'f64.store',
  0x5b: 'f32.eq', 0x5d: 'f32.lt', 0x5e: 'f32.gt', 0x5f: 'f32.le', 0x61: 'f64.eq', 0x63: 'f64.lt', 0x64: 'f64.gt',
  0x65: 'f64.le', 0x8b: 'f32.abs', 0x91: 'f32.sqrt', 0x92: 'f32.add', 0x93: 'f32.sub', 0x94: 'f32.mul',
  0x95: 'f32.div', 0x99: 'f64.abs', 0x9a: 'f64.neg', 0x9f: 'f64.sqrt', 0xa0: 'f64.add', 0xa1: 'f64.sub',
  0xa2: 'f64.mul', 0xa3: 'f64.div', 0xb7: 'f64.convert_i32_s', 0xb8: 'f64.convert_i32_u', 0xbd: 'i64.reinterpret_f64',
  0xbf: 'f64.reinterpret_i64',
  0xa7: 'i32.wrap_i64', 0xac: 'i64.extend_i32_s', 0xad: 'i64.extend_i32_u', 0xc2: 'i64.extend8_s',
  0xc3: 'i64.extend16_s', 0xc4: 'i64.extend32_s',
};

/** log2 natural alignment per memory opcode (the alignment hint, §5.4.6). */
function naturalAlign(op: number): number {
  switch (op) {
    case Op.i64_load: case Op.i64_store: case Op.f64_load: case Op.f64_store: return 3;
    case Op.f32_load: case Op.f32_store:
    case Op.i32_load: case Op.i32_store: case Op.i64_load32_s: case Op.i64_load32_u: case Op.i64_store32: return 2;
    case Op.i64_load16_s: case Op.i64_load16_u: case Op.i64_store16: return 1;
    default: return 0;
  }
}

/** A growable byte buffer with LEB128 writers. */
export class Bytes {
  buf = new Uint8Array(4096);
  len = 0;

  /** Appends one byte. */
  byte(b: number): void {
    if (this.len === this.buf.length) {
      const n = new Uint8Array(this.buf.length * 2);
      n.set(this.buf);
      this.buf = n;
    }
    this.buf[this.len++] = b;
  }

  /** Appends bytes. */
  bytes(b: ArrayLike<number>): void {
    for (let i = 0; i < b.length; i++) this.byte(b[i]!);
  }

  /** Unsigned LEB128 of a non-negative integer below 2^32. */
  u32(v: number): void {
    v >>>= 0;
    do {
      let b = v & 0x7f;
      v >>>= 7;
      if (v !== 0) b |= 0x80;
      this.byte(b);
    } while (v !== 0);
  }

  /** Signed LEB128 of a 32-bit integer. */
  s32(v: number): void {
    v |= 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) { this.byte(b); return; }
      this.byte(b | 0x80);
    }
  }

  /** Signed LEB128 of the 64-bit integer (lo, hi) given as 32-bit halves. */
  s64(lo: number, hi: number): void {
    lo |= 0; hi |= 0;
    for (;;) {
      const b = lo & 0x7f;
      // Arithmetic shift of the 64-bit value right by 7.
      lo = (lo >>> 7) | (hi << 25);
      hi >>= 7;
      const done = (hi === 0 && lo === 0 && (b & 0x40) === 0) || (hi === -1 && lo === -1 && (b & 0x40) !== 0);
      if (done) { this.byte(b); return; }
      this.byte(b | 0x80);
    }
  }

  /** A length-prefixed UTF-8 name (ASCII here). */
  name(s: string): void {
    this.u32(s.length);
    for (let i = 0; i < s.length; i++) this.byte(s.charCodeAt(i));
  }

  /** The bytes written so far. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** One function body under construction, with an optional listing. */
export class Code extends Bytes {
  /** Text listing, one instruction per line, or null when not wanted. */
  readonly listing: string[] | null;
  private depth = 0;
  /** Branch hints: (byte offset of an `if` in this code, 1 likely / 0 unlikely) pairs. */
  readonly hints: number[] = [];

  constructor(listing: boolean) {
    super();
    this.listing = listing ? [] : null;
  }

  private note(text: string): void {
    if (this.listing !== null) this.listing.push('  '.repeat(this.depth) + text);
  }

  /** A comment line in the listing (no bytes). */
  comment(text: string): void {
    if (this.listing !== null) this.listing.push('  '.repeat(this.depth) + ';; ' + text);
  }

  /** An instruction without immediates. */
  op(o: Op): void {
    if (o === Op.end || o === Op.else) this.depth = Math.max(0, this.depth - 1);
    this.byte(o);
    this.note(NAMES[o] ?? `op ${o}`);
    if (o === Op.else) this.depth++;
  }

  /** An `if` whose condition is `likely` (true) or unlikely (false): recorded for the branch-hint section. */
  openHinted(likely: boolean, type: number = VOID): void {
    this.hints.push(this.len, likely ? 1 : 0);
    this.open(Op.if, type);
    if (this.listing !== null) this.listing[this.listing.length - 1] += likely ? ' ;; likely' : ' ;; unlikely';
  }

  /** block / loop / if with a block type. */
  open(o: Op.block | Op.loop | Op.if, type: number = VOID): void {
    this.byte(o);
    this.byte(type);
    this.note((NAMES[o] ?? '') + (type === VOID ? '' : type === I64 ? ' (result i64)' : ' (result i32)'));
    this.depth++;
  }

  /** br / br_if to a relative label depth. */
  br(o: Op.br | Op.br_if, depth: number): void {
    this.byte(o);
    this.u32(depth);
    this.note(`${NAMES[o]} ${depth}`);
  }

  /** br_table over `targets` with a default. */
  brTable(targets: number[], dflt: number): void {
    this.byte(Op.br_table);
    this.u32(targets.length);
    for (const t of targets) this.u32(t);
    this.u32(dflt);
    this.note(`br_table ${targets.join(' ')} ${dflt}`);
  }

  /** local.get / local.set / local.tee. */
  local(o: Op.local_get | Op.local_set | Op.local_tee, idx: number): void {
    this.byte(o);
    this.u32(idx);
    this.note(`${NAMES[o]} ${idx}`);
  }

  /** global.get / global.set. */
  global(o: Op.global_get | Op.global_set, idx: number): void {
    this.byte(o);
    this.u32(idx);
    this.note(`${NAMES[o]} ${idx}`);
  }

  /** return_call of function index `idx` (a tail call). */
  tailCall(idx: number): void {
    this.byte(Op.return_call);
    this.u32(idx);
    this.note(`return_call ${idx}`);
  }

  /** return_call_indirect through table 0 with function type `type` (the tail-call proposal, now standard). */
  tailCallIndirect(type: number): void {
    this.byte(Op.return_call_indirect);
    this.u32(type);
    this.u32(0);
    this.note(`return_call_indirect (type ${type})`);
  }

  /** call_indirect through table 0 with function type `type` (the index is on the stack). */
  callIndirect(type: number): void {
    this.byte(Op.call_indirect);
    this.u32(type);
    this.u32(0);
    this.note(`call_indirect (type ${type})`);
  }

  /** call of function index `idx`. */
  call(idx: number): void {
    this.byte(Op.call);
    this.u32(idx);
    this.note(`call ${idx}`);
  }

  /** A load or store with a constant byte offset (natural alignment hint). */
  mem(o: Op, offset: number): void {
    this.byte(o);
    this.u32(naturalAlign(o));
    this.u32(offset);
    this.note(offset === 0 ? NAMES[o]! : `${NAMES[o]} offset=${offset}`);
  }

  /** i32.const. */
  i32(v: number): void {
    this.byte(Op.i32_const);
    this.s32(v);
    this.note(`i32.const ${v | 0}`);
  }

  /** i64.const of a sign-extended 32-bit value. */
  i64(v: number): void {
    this.byte(Op.i64_const);
    this.s32(v);
    this.note(`i64.const ${v | 0}`);
  }

  /** f64.const (8 bytes little-endian, §5.4.7). */
  f64(v: number): void {
    this.byte(Op.f64_const);
    const b = new Uint8Array(new Float64Array([v]).buffer);
    this.bytes(b);
    this.note(`f64.const ${v}`);
  }

  /** f32.const (4 bytes little-endian). */
  f32(v: number): void {
    this.byte(Op.f32_const);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.bytes(b);
    this.note(`f32.const ${v}`);
  }

  /** i64.const of (lo, hi). */
  i64w(lo: number, hi: number): void {
    this.byte(Op.i64_const);
    this.s64(lo, hi);
    this.note(`i64.const 0x${(hi >>> 0).toString(16).padStart(8, '0')}${(lo >>> 0).toString(16).padStart(8, '0')}`);
  }
}

/** A module's first bytes: magic and version 1 (§5.5.16). */
function moduleHeader(): Bytes {
  const out = new Bytes();
  out.bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  return out;
}

/** Appends section `id` (§5.5.2): its bytes, as `fill` writes them, behind their length. */
function addSection(out: Bytes, id: number, fill: (b: Bytes) => void): void {
  const b = new Bytes();
  fill(b);
  out.byte(id);
  out.u32(b.len);
  out.bytes(b.view());
}

/** A function type: params and results. */
export interface FuncType { params: number[]; results: number[] }

/** An imported function: module, name and type index. */
export interface FuncImport { module: string; name: string; type: number }

/** An imported funcref table: module, name and minimum size. */
export interface TableImport { module: string; name: string; min: number }

/**
 * Assembles a module: `types`, the imported memory ("m"."mem"), the
 * imported funcref table `table` (table 0), `globals` mutable i32 globals
 * (zero, exported as their names), and one exported function "f" (function
 * 0) of type `fnType` with the given locals (as [count, type] groups) and
 * body (which must end with `end`). It imports no functions: calls to
 * helpers go through the table (see hubModuleBytes). `sharedMemory`
 * declares the memory import shared (a host's frame pool).
 */
export function moduleBytes(types: FuncType[], table: TableImport, fnType: number,
  locals: [number, number][], body: Uint8Array, globals: string[] = [], hints: number[] = [], sharedMemory = false): Uint8Array<ArrayBuffer> {
  const out = moduleHeader();
  const section = (id: number, fill: (b: Bytes) => void): void => addSection(out, id, fill);
  section(1, (b) => { // type section
    b.u32(types.length);
    for (const t of types) {
      b.byte(0x60);
      b.u32(t.params.length); for (const p of t.params) b.byte(p);
      b.u32(t.results.length); for (const r of t.results) b.byte(r);
    }
  });
  section(2, (b) => { // import section
    b.u32(2);
    b.name(table.module); b.name(table.name); b.byte(0x01); b.byte(0x70); b.byte(0x00); b.u32(table.min); // funcref table, no max
    b.name('m'); b.name('mem'); b.byte(0x02);
    // memory, min 0 pages; a shared memory must be declared shared with a maximum (threads proposal: limits flag 3), 4 GiB here.
    if (sharedMemory) { b.byte(0x03); b.u32(0); b.u32(65536); } else { b.byte(0x00); b.u32(0); }
  });
  section(3, (b) => { b.u32(1); b.u32(fnType); }); // function section
  if (globals.length > 0) {
    section(6, (b) => { // global section: mutable i32, initialised to 0
      b.u32(globals.length);
      for (let i = 0; i < globals.length; i++) { b.byte(I32); b.byte(0x01); b.byte(Op.i32_const); b.s32(0); b.byte(Op.end); }
    });
  }
  section(7, (b) => { // exports: "f" and the globals
    b.u32(1 + globals.length);
    b.name('f'); b.byte(0x00); b.u32(0);
    globals.forEach((g, i) => { b.name(g); b.byte(0x03); b.u32(i); });
  });
  const fb = new Bytes();
  fb.u32(locals.length);
  for (const [n, t] of locals) { fb.u32(n); fb.byte(t); }
  if (hints.length > 0) {
    // Branch hints (branch-hinting proposal: custom section "metadata.code.branch_hint", before the code
    // section): for function 0, each hinted `if` as (offset from the body's start, including the locals, size 1, hint).
    const base = fb.len;
    section(0, (b) => {
      b.name('metadata.code.branch_hint');
      b.u32(1); b.u32(0); b.u32(hints.length / 2);
      for (let i = 0; i < hints.length; i += 2) { b.u32(base + hints[i]!); b.u32(1); b.byte(hints[i + 1]!); }
    });
  }
  section(10, (b) => { // code section
    fb.bytes(body);
    b.u32(1);
    b.u32(fb.len);
    b.bytes(fb.view());
  });
  return new Uint8Array(out.view());
}

/**
 * The hub module: it owns the function table of translated units and
 * exports `hub(st, budget, entry, slot)`, which tail-calls table[slot].
 * Units reach each other through an imported `hub` instead of importing the
 * table: V8 updates every importer of a table on each `Table.set`, which
 * made installing a unit cost O(live units).
 *
 * It also imports the engine's JS helpers (`helpers`, module "h") once and
 * exports a wasm thunk for each, under the helper's name. Units call the
 * thunks (and the hub) through a helper table rather than importing
 * functions: V8 (Node 20) compiles a wasm-to-JS wrapper with TurboFan for
 * every imported function signature of every module, even when the import
 * turns out to be a wasm function, and that was about half the cost of
 * compiling a unit.
 * `types[unitType]` is the units' function type, `types[hubType]` the hub's.
 */
export function hubModuleBytes(initialSlots: number, types: FuncType[], helpers: FuncImport[],
  unitType: number, hubType: number): Uint8Array<ArrayBuffer> {
  const out = moduleHeader();
  const section = (id: number, fill: (b: Bytes) => void): void => addSection(out, id, fill);
  const n = helpers.length;
  section(1, (b) => {
    b.u32(types.length);
    for (const t of types) {
      b.byte(0x60);
      b.u32(t.params.length); for (const p of t.params) b.byte(p);
      b.u32(t.results.length); for (const r of t.results) b.byte(r);
    }
  });
  section(2, (b) => {
    b.u32(n);
    for (const im of helpers) { b.name(im.module); b.name(im.name); b.byte(0x00); b.u32(im.type); }
  });
  section(3, (b) => { b.u32(1 + n); b.u32(hubType); for (const im of helpers) b.u32(im.type); });
  section(4, (b) => { b.u32(1); b.byte(0x70); b.byte(0x00); b.u32(initialSlots); }); // funcref table
  section(7, (b) => {
    b.u32(2 + n);
    b.name('hub'); b.byte(0x00); b.u32(n);
    b.name('tab'); b.byte(0x01); b.u32(0);
    helpers.forEach((im, i) => { b.name(im.name); b.byte(0x00); b.u32(n + 1 + i); });
  });
  section(10, (b) => {
    b.u32(1 + n);
    const body = (fill: (fb: Code) => void): void => {
      const fb = new Code(false);
      fb.u32(0); // no locals
      fill(fb);
      fb.op(Op.end);
      b.u32(fb.len);
      b.bytes(fb.view());
    };
    body((fb) => {
      for (let p = 0; p < 4; p++) fb.local(Op.local_get, p);
      fb.tailCallIndirect(unitType);
    });
    helpers.forEach((im, i) => body((fb) => {
      const t = types[im.type]!;
      for (let p = 0; p < t.params.length; p++) fb.local(Op.local_get, p);
      fb.call(i);
    }));
  });
  return new Uint8Array(out.view());
}
