/**
 * Symbol lookup in an ELF64 file's .symtab (System V gABI "Symbol Table"),
 * used to find HTIF's `tohost`/`fromhost` in bare-metal test programs.
 */

/** Returns the value of each requested symbol found in .symtab (missing ones are absent). */
export function findElfSymbols(data: Uint8Array, names: string[]): Map<string, number> {
  const out = new Map<string, number>();
  if (data.length < 64 || data[0] !== 0x7f || data[4] !== 2) return out;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const u64 = (o: number): number => dv.getUint32(o + 4, true) * 4294967296 + dv.getUint32(o, true);
  const shoff = u64(40), shentsize = dv.getUint16(58, true), shnum = dv.getUint16(60, true);
  if (shentsize !== 64 || shoff + shnum * 64 > data.length) return out;
  const want = new Set(names);
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * 64;
    if (dv.getUint32(sh + 4, true) !== 2) continue; // SHT_SYMTAB
    const off = u64(sh + 24), size = u64(sh + 32), link = dv.getUint32(sh + 40, true);
    const strSh = shoff + link * 64;
    if (link >= shnum || off + size > data.length) continue;
    const strOff = u64(strSh + 24), strSize = u64(strSh + 32);
    if (strOff + strSize > data.length) continue;
    for (let s = off; s + 24 <= off + size; s += 24) { // Elf64_Sym is 24 bytes
      const nameOff = dv.getUint32(s, true);
      if (nameOff >= strSize) continue;
      let end = strOff + nameOff;
      while (end < strOff + strSize && data[end] !== 0) end++;
      const name = new TextDecoder().decode(data.subarray(strOff + nameOff, end));
      if (want.has(name) && !out.has(name)) out.set(name, u64(s + 8));
    }
  }
  return out;
}
