/**
 * ELF64 parsing for riscv64 executables (System V gABI "ELF Header" and
 * "Program Header" chapters; RISC-V ELF psABI for EM_RISCV).
 *
 * Every field the loader relies on is validated here, so a corrupt file is
 * rejected with one clear message before anything is mapped.
 */

/** e_machine value for RISC-V (psABI "ELF Object Files"). */
export const EM_RISCV = 243;
/** e_type values (gABI). */
export const ET_EXEC = 2, ET_DYN = 3;
/** p_type values (gABI; PT_GNU_STACK from the GNU extensions). */
export const PT_LOAD = 1, PT_INTERP = 3, PT_PHDR = 6, PT_GNU_STACK = 0x6474e551;
/** p_flags bits (gABI). */
export const PF_X = 1, PF_W = 2, PF_R = 4;
/** Size of one ELF64 program header (gABI: Elf64_Phdr). */
export const PHDR_SIZE = 56;
const EHDR_SIZE = 64;

/** A rejected executable: message for the user plus a shell-style exit status. */
export class ExecError extends Error {
  /** 126: found but cannot execute; 127: not found. */
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** One program header. Addresses are JS numbers (exact below 2^53). */
export interface ProgramHeader {
  type: number; flags: number; offset: number; vaddr: number; filesz: number; memsz: number; align: number;
}

/** The parts of an ELF file the loader needs. */
export interface ElfImage {
  type: number;
  entry: number;
  phoff: number;
  phnum: number;
  phdrs: ProgramHeader[];
  /** PT_INTERP path, if any. */
  interp: string | null;
  /** The file bytes. */
  data: Uint8Array;
}

function u64(dv: DataView, off: number): number {
  const hi = dv.getUint32(off + 4, true);
  if (hi >= 0x200000) return Number.POSITIVE_INFINITY; // beyond 2^53: never a valid user address or size
  return hi * 4294967296 + dv.getUint32(off, true);
}

/** Parses and validates a riscv64 ELF executable; throws ExecError (126). */
export function parseElf(data: Uint8Array, name: string): ElfImage {
  const bad = (why: string): ExecError => new ExecError(`${name}: ${why}`, 126);
  if (data.length < 4 || data[0] !== 0x7f || data[1] !== 0x45 || data[2] !== 0x4c || data[3] !== 0x46) {
    throw bad('not an ELF executable (bad magic)');
  }
  if (data.length < EHDR_SIZE) throw bad('truncated ELF header');
  if (data[4] !== 2) throw bad(`wrong ELF class ${data[4] === 1 ? 'ELF32' : String(data[4])} (need ELF64)`);
  if (data[5] !== 1) throw bad('not little-endian (EI_DATA must be ELFDATA2LSB)');
  if (data[6] !== 1) throw bad('unsupported ELF version');
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const type = dv.getUint16(16, true), machine = dv.getUint16(18, true);
  if (machine !== EM_RISCV) throw bad(`wrong architecture (e_machine ${machine}, need RISC-V ${EM_RISCV})`);
  if (type !== ET_EXEC && type !== ET_DYN) throw bad(`not an executable (e_type ${type})`);
  const entry = u64(dv, 24), phoff = u64(dv, 32);
  const phentsize = dv.getUint16(54, true), phnum = dv.getUint16(56, true);
  if (phnum === 0) throw bad('no program headers');
  if (phentsize !== PHDR_SIZE) throw bad(`bad program header size ${phentsize}`);
  if (!(phoff + phnum * PHDR_SIZE <= data.length)) throw bad('truncated program header table');
  const phdrs: ProgramHeader[] = [];
  let interp: string | null = null;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * PHDR_SIZE;
    const ph: ProgramHeader = {
      type: dv.getUint32(o, true), flags: dv.getUint32(o + 4, true), offset: u64(dv, o + 8),
      vaddr: u64(dv, o + 16), filesz: u64(dv, o + 32), memsz: u64(dv, o + 40), align: u64(dv, o + 48),
    };
    if (ph.type === PT_LOAD) {
      if (!(ph.offset + ph.filesz <= data.length)) throw bad(`segment ${i} extends past the end of the file`);
      if (ph.filesz > ph.memsz) throw bad(`segment ${i} has p_filesz > p_memsz`);
      if (!(ph.vaddr + ph.memsz < 0x40_0000_0000)) throw bad(`segment ${i} lies outside the user address range`);
      if (ph.align > 1 && (ph.vaddr - ph.offset) % 4096 !== 0) throw bad(`segment ${i} is misaligned`);
    }
    if (ph.type === PT_INTERP) {
      if (!(ph.offset + ph.filesz <= data.length) || ph.filesz < 2 || ph.filesz > 4096) throw bad('bad PT_INTERP');
      let end = ph.offset + ph.filesz;
      if (data[end - 1] === 0) end--;
      interp = new TextDecoder().decode(data.subarray(ph.offset, end));
    }
    phdrs.push(ph);
  }
  const loads = phdrs.filter((p) => p.type === PT_LOAD).sort((a, b) => a.vaddr - b.vaddr);
  if (loads.length === 0) throw bad('no loadable segments');
  for (let i = 1; i < loads.length; i++) {
    const a = loads[i - 1]!, b = loads[i]!;
    if (a.vaddr + a.memsz > b.vaddr) throw bad('overlapping loadable segments');
  }
  if (!Number.isFinite(entry)) throw bad('bad entry point');
  return { type, entry, phoff, phnum, phdrs, interp, data };
}
