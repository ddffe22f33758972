/**
 * `tsvm exec ARGS`: Docker's exec (a command in a container) or the
 * process VM (a riscv64 program)? The rule in src/cli/container-command.ts
 * (README, "Containers"): the first word after any -i/-t/-it decides; it
 * names a container when it has no '/', is no file in the current
 * directory, and a record on disk has that name or id prefix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isContainerExec } from '../../src/cli/container-command.js';

test('tsvm exec: -t before a program path is the process VM\'s terminal; before a container name it is Docker\'s exec', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-exec-rule-'));
  const saved = process.env['TSVM_CONTAINERS'];
  try {
    const id = 'ab'.repeat(32);
    fs.mkdirSync(path.join(dir, id));
    fs.writeFileSync(path.join(dir, id, 'config.json'), JSON.stringify({ Id: id, Name: '/web' }));
    process.env['TSVM_CONTAINERS'] = dir;
    const cases: [string[], boolean][] = [
      [['-it', 'web', 'sh'], true], [['-t', 'web', 'sh'], true], [['-i', '-t', 'web', 'sh'], true], [['web', 'ls'], true],
      [['abab', 'ls'], true], // an id prefix
      [['-t', './prog'], false], [['-t', '/bin/sh'], false], [['--tty', 'web'], false], [['-it', 'nosuch'], false],
      [['nosuch'], false], [[], false], [['-t'], false],
    ];
    for (const [args, want] of cases) assert.equal(await isContainerExec(args), want, `tsvm exec ${args.join(' ')}`);
  } finally {
    if (saved === undefined) delete process.env['TSVM_CONTAINERS']; else process.env['TSVM_CONTAINERS'] = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
