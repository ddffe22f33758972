/**
 * Dynamically linked PIE test programs (tests/programs/*.c) installed in the
 * guest sysroot, each with qemu-riscv64's run as its reference: what the
 * stress and V8-tier tests compare tsvm against.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { compile } from './toolchain.js';
import { freshDir, installInRoot, runQemu, type RunResult } from './guest-run.js';

/** One program: its source's name, its path in the sysroot, and QEMU's run of it. */
export interface DynamicProgram { name: string; guest: string; ref: RunResult }

/** Compiles each of `sources` dynamically, installs it in `root` as /progs/TAG-NAME, and runs it under QEMU (which must exit 0). */
export async function prepareDynamicPrograms(root: string, sources: readonly string[], tag: string): Promise<DynamicProgram[]> {
  const out: DynamicProgram[] = [];
  for (const p of sources) {
    const guest = installInRoot(root, compile({ sources: [p], linkage: 'dynamic' }), `/progs/${tag}-${p.replace(/\.c$/, '')}`);
    const cwd = freshDir(root, `${tag}-ref`);
    try {
      const ref = await runQemu(guest, { root, cwd, timeoutMs: 120_000 });
      assert.equal(ref.status, 0, `qemu: ${p} exit status (harness problem?) stderr: ${ref.stderr}`);
      out.push({ name: p, guest, ref });
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }
  return out;
}
