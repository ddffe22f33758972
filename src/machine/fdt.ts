/**
 * Flattened device tree (DTB) builder, format version 17, per the
 * Devicetree Specification v0.4, chapter 5 "Flattened Devicetree (DTB)
 * Format": header (5.2), memory reservation block (5.3), structure block
 * (5.4) and strings block (5.5), laid out in that order (5.1).
 *
 * Nodes are written depth-first: beginNode(), its properties, its children,
 * endNode(). The root node is beginNode('').
 */

/** DTB magic (DT spec 5.2 `magic`). */
export const FDT_MAGIC = 0xd00dfeed;
/** Format version written (DT spec 5.2 `version`). */
export const FDT_VERSION = 17;
/** Oldest version this layout is compatible with (DT spec 5.2 `last_comp_version`). */
export const FDT_LAST_COMP_VERSION = 16;

/** Structure block token: start of a node (DT spec 5.4.1). */
const FDT_BEGIN_NODE = 0x1;
/** Structure block token: end of a node (DT spec 5.4.1). */
const FDT_END_NODE = 0x2;
/** Structure block token: a property (DT spec 5.4.1). */
const FDT_PROP = 0x3;
/** Structure block token: end of the structure block (DT spec 5.4.1). */
const FDT_END = 0x9;
/** Header size: ten 32-bit fields (DT spec 5.2). */
const HEADER_SIZE = 40;
/** 2^32. */
const TWO32 = 4294967296;

/** Characters allowed in node names, plus '@' before a unit address (DT spec 2.2.1, Table 2.1). */
const NODE_NAME_RE = /^[0-9a-zA-Z,._+-]{1,31}(@[0-9a-zA-Z,._+-]+)?$/;
/** Characters allowed in property names (DT spec 2.2.4.1, Table 2.2). */
const PROP_NAME_RE = /^[0-9a-zA-Z,._+?#-]{1,31}$/;

/**
 * A property value: raw bytes, a string (NUL-terminated), a string list,
 * or 32-bit cells (each a number in 0..2^32-1, big-endian).
 */
export type FdtPropValue = Uint8Array | string | readonly string[] | readonly number[];

/** Splits a 64-bit value (an exact JS integer) into its two big-endian cells [high, low]. */
export function u64Cells(v: number): [number, number] {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a 64-bit cell value: ${v}`);
  return [Math.floor(v / TWO32), v % TWO32];
}

/** A growable big-endian byte buffer. */
class ByteSink {
  buf = new Uint8Array(1024);
  len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u32(v: number): void {
    this.reserve(4);
    const x = v >>> 0;
    this.buf[this.len] = x >>> 24;
    this.buf[this.len + 1] = (x >>> 16) & 0xff;
    this.buf[this.len + 2] = (x >>> 8) & 0xff;
    this.buf[this.len + 3] = x & 0xff;
    this.len += 4;
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** Pads with zeros to a multiple of `n`. */
  align(n: number): void {
    const pad = (n - (this.len % n)) % n;
    this.reserve(pad);
    this.buf.fill(0, this.len, this.len + pad);
    this.len += pad;
  }
}

/** Per open node: property names seen, and whether a child has started (properties must come first). */
interface OpenNode {
  readonly name: string;
  readonly props: Set<string>;
  hasChild: boolean;
}

/** Builds a DTB. */
export class FdtBuilder {
  private readonly struct = new ByteSink();
  private readonly strings = new ByteSink();
  private readonly stringOffsets = new Map<string, number>();
  private readonly reservations: [number, number][] = [];
  private readonly stack: OpenNode[] = [];
  private rootDone = false;
  private nextPhandle = 1;
  private readonly enc = new TextEncoder();

  /** A builder; `bootCpuId` is the header's boot_cpuid_phys (DT spec 5.2). */
  constructor(private readonly bootCpuId = 0) {}

  /** Adds a memory reservation entry (DT spec 5.3). */
  addReservation(address: number, size: number): this {
    u64Cells(address);
    u64Cells(size);
    this.reservations.push([address, size]);
    return this;
  }

  /** Returns a fresh phandle value (1, 2, ...; 0 and 0xffffffff are never used, DT spec 2.3.3). */
  allocPhandle(): number {
    return this.nextPhandle++;
  }

  /** Opens a node; the first must be the root, named ''. */
  beginNode(name: string): this {
    const parent = this.stack[this.stack.length - 1];
    if (!parent) {
      if (this.rootDone || name !== '') throw new Error(this.rootDone ? 'the root node is already closed' : 'the first node must be the root ("")');
    } else {
      if (!NODE_NAME_RE.test(name)) throw new Error(`invalid node name "${name}"`);
      parent.hasChild = true;
    }
    this.struct.u32(FDT_BEGIN_NODE);
    this.struct.bytes(this.enc.encode(name));
    this.struct.bytes(new Uint8Array(1));
    this.struct.align(4);
    this.stack.push({ name, props: new Set(), hasChild: false });
    return this;
  }

  /** Closes the innermost open node. */
  endNode(): this {
    if (!this.stack.pop()) throw new Error('endNode() without an open node');
    this.struct.u32(FDT_END_NODE);
    if (this.stack.length === 0) this.rootDone = true;
    return this;
  }

  /** Adds a property to the open node (see FdtPropValue for how values are encoded). */
  prop(name: string, value: FdtPropValue): this {
    let data: Uint8Array;
    if (value instanceof Uint8Array) data = value;
    else if (typeof value === 'string') data = this.stringList([value]);
    else if (value.length > 0 && typeof value[0] === 'string') data = this.stringList(value as readonly string[]);
    else data = this.cells(value as readonly number[]);
    return this.rawProp(name, data);
  }

  /** Adds an empty (boolean) property. */
  propEmpty(name: string): this {
    return this.rawProp(name, new Uint8Array(0));
  }

  /** Adds a one-cell property. */
  propU32(name: string, v: number): this {
    return this.rawProp(name, this.cells([v]));
  }

  /** Adds a two-cell (64-bit) property. */
  propU64(name: string, v: number): this {
    return this.rawProp(name, this.cells(u64Cells(v)));
  }

  /** Adds a string property. */
  propString(name: string, s: string): this {
    return this.rawProp(name, this.stringList([s]));
  }

  /** Adds a string-list property. */
  propStrings(name: string, list: readonly string[]): this {
    if (list.length === 0) throw new Error(`empty string list for "${name}"`);
    return this.rawProp(name, this.stringList(list));
  }

  /** Adds a property of 32-bit cells. */
  propCells(name: string, cells: readonly number[]): this {
    return this.rawProp(name, this.cells(cells));
  }

  /** Serialises the tree; the root node must be closed. */
  finish(): Uint8Array {
    if (!this.rootDone || this.stack.length !== 0) throw new Error('finish() before the root node was closed');
    const rsv = new ByteSink();
    for (const [a, s] of this.reservations) {
      for (const c of [...u64Cells(a), ...u64Cells(s)]) rsv.u32(c);
    }
    for (let k = 0; k < 4; k++) rsv.u32(0); // terminating entry (DT spec 5.3.2)
    const structLen = this.struct.len + 4; // + FDT_END
    const offRsv = HEADER_SIZE; // 8-byte aligned (DT spec 5.3.1)
    const offStruct = offRsv + rsv.len; // 4-byte aligned (DT spec 5.4.1)
    const offStrings = offStruct + structLen;
    const total = offStrings + this.strings.len;
    const out = new ByteSink();
    for (const v of [FDT_MAGIC, total, offStruct, offStrings, offRsv, FDT_VERSION, FDT_LAST_COMP_VERSION,
      this.bootCpuId, this.strings.len, structLen]) out.u32(v);
    out.bytes(rsv.buf.subarray(0, rsv.len));
    out.bytes(this.struct.buf.subarray(0, this.struct.len));
    out.u32(FDT_END);
    out.bytes(this.strings.buf.subarray(0, this.strings.len));
    return out.buf.slice(0, out.len);
  }

  private rawProp(name: string, data: Uint8Array): this {
    const node = this.stack[this.stack.length - 1];
    if (!node) throw new Error(`property "${name}" outside a node`);
    if (!PROP_NAME_RE.test(name)) throw new Error(`invalid property name "${name}"`);
    if (node.hasChild) throw new Error(`property "${name}" after a child node of "${node.name}"`);
    if (node.props.has(name)) throw new Error(`duplicate property "${name}" in "${node.name}"`);
    node.props.add(name);
    this.struct.u32(FDT_PROP);
    this.struct.u32(data.length);
    this.struct.u32(this.stringOffset(name));
    this.struct.bytes(data);
    this.struct.align(4);
    return this;
  }

  private stringOffset(name: string): number {
    let off = this.stringOffsets.get(name);
    if (off === undefined) {
      off = this.strings.len;
      this.strings.bytes(this.enc.encode(name));
      this.strings.bytes(new Uint8Array(1));
      this.stringOffsets.set(name, off);
    }
    return off;
  }

  private stringList(list: readonly string[]): Uint8Array {
    const sink = new ByteSink();
    for (const s of list) {
      if (s.includes('\0')) throw new Error('NUL inside a device-tree string');
      sink.bytes(this.enc.encode(s));
      sink.bytes(new Uint8Array(1));
    }
    return sink.buf.slice(0, sink.len);
  }

  private cells(cells: readonly number[]): Uint8Array {
    const sink = new ByteSink();
    for (const c of cells) {
      if (!Number.isInteger(c) || c < 0 || c >= TWO32) throw new RangeError(`not a 32-bit cell: ${c}`);
      sink.u32(c);
    }
    return sink.buf.slice(0, sink.len);
  }
}
