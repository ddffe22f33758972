/**
 * Byte and halfword access to devices whose registers are 32-bit words
 * (CLINT, PLIC): a narrower read extracts from the word, a narrower write
 * merges into it (little-endian, as on the virt board).
 */

/** The `size`-byte (1, 2 or 4) value at byte `offset` of the word `w` holding it. */
export function readSubword(w: number, offset: number, size: number): number {
  if (size === 4) return w;
  return (w >>> ((offset & 3) * 8)) & (size === 2 ? 0xffff : 0xff);
}

/** The word `cur` with the `size`-byte (1 or 2) value `v` merged in at byte `offset`. */
export function mergeSubword(cur: number, offset: number, size: number, v: number): number {
  const shift = (offset & 3) * 8;
  const mask = (size === 2 ? 0xffff : 0xff) << shift;
  return (cur & ~mask) | ((v << shift) & mask);
}
