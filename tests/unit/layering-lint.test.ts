/**
 * The layering rule in eslint.config.js: the core layers (cpu, mmu, memory,
 * jit, devices, machine, process, vmm) import only each other — no node:
 * module (or bare builtin), and not the host, images or cli layers, which
 * would bring node: modules in transitively. Lints small sources as if they
 * sat in the core and in the host layer, and checks the config's layer list.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

/** The repository root (this file runs from dist/tests/unit). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const SOURCE = [
  "import fs from 'node:fs';",
  "import os from 'os';",
  "import { a } from '../host/x.js';",
  "import { b } from '../cli/y.js';",
  "import { c } from '../images/z.js';",
  "import { d } from './qemu-opts.js';",
  "import { e } from '../devices/device.js';",
  'export const all = [fs, os, a, b, c, d, e];',
  '',
].join('\n');

/** Line numbers of no-restricted-imports errors when SOURCE is linted as `file`. */
async function restrictedLines(file: string, source = SOURCE): Promise<number[]> {
  const eslint = new ESLint({ cwd: ROOT });
  const [r] = await eslint.lintText(source, { filePath: path.join(ROOT, file) });
  assert.ok(r, 'a lint result');
  return r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.line);
}

test('a core file importing node:, a bare builtin, host, cli or images is an error; core imports are fine', async () => {
  assert.deepEqual(await restrictedLines('src/vmm/zz-layering-probe.ts'), [1, 2, 3, 4, 5]);
  assert.deepEqual(await restrictedLines('src/jit/zz-layering-probe.ts'), [1, 2, 3, 4, 5]);
  const deep = SOURCE.replaceAll("'../host/", "'../../host/").replaceAll("'../images/", "'../../images/");
  assert.deepEqual(await restrictedLines('src/devices/virtio/zz-layering-probe.ts', deep), [1, 2, 3, 4, 5]);
});

test('the host layer may import node: modules and the core', async () => {
  assert.deepEqual(await restrictedLines('src/host/zz-layering-probe.ts'), []);
});

test('the rule covers every core layer', async () => {
  const { CORE_LAYERS } = await import(path.join(ROOT, 'eslint.config.js')) as { CORE_LAYERS: string[] };
  assert.deepEqual([...CORE_LAYERS].sort(), ['src/cpu', 'src/devices', 'src/jit', 'src/machine', 'src/memory', 'src/mmu', 'src/process', 'src/vmm']);
  for (const dir of CORE_LAYERS) {
    assert.equal((await restrictedLines(`${dir}/zz-layering-probe.ts`)).length, 5, dir);
  }
});
