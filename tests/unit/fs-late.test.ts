/**
 * A late virtio-fs share (`-fsdev late,id=ID`, src/vmm/fs-late.ts), the
 * container host's spare microVMs' root: through the virtio-mmio transport
 * and a hand-written FUSE client, every request fails with ENXIO until the
 * host binds a tree; binding is checked (bad options, missing directories,
 * a second bind) and leaves the share unbound when refused; and the QMP
 * command `__tsvm-fsdev-bind` reaches the VM's binder and reports its errors.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VirtioFs } from '../../src/devices/virtio/fs.js';
import * as P from '../../src/devices/virtio/fs-proto.js';
import { LateFsBackend } from '../../src/vmm/fs-late.js';
import { bindLateFsdev } from '../../src/vmm/dev-fs.js';
import { OptsError } from '../../src/vmm/qemu-opts.js';
import { QmpMonitor, type BalloonControl, type QmpConnection, type RunState, type VmControl } from '../../src/vmm/qmp.js';
import { NodeHostOs } from '../../src/host/node-host-os.js';
import { FuseDriver, u32, str } from '../helpers/fuse-driver.js';

const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tsvm-late-')));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const ENXIO = 6; // errno-base.h

/** A late share on a device, INIT done. */
function setup(): { late: LateFsBackend; f: FuseDriver } {
  const late = new LateFsBackend('root');
  const f = new FuseDriver(new VirtioFs(late, 'ctr-root'));
  f.ok(P.FUSE_INIT, 0, u32(7, 41, 131072, 0xffffffff, 0, ...new Array<number>(11).fill(0)));
  return { late, f };
}

test('a late share answers ENXIO until bound; an overlay bound later serves the lower layer and writes to the upper', () => {
  const lower = path.join(tmp, 'lower'), upper = path.join(tmp, 'upper');
  fs.mkdirSync(lower); fs.mkdirSync(upper);
  fs.writeFileSync(path.join(lower, 'marker'), 'from the image\n');
  const { late, f } = setup();
  assert.equal(late.bound, false);
  assert.equal(late.readOnly, true, 'nothing to write before a tree is bound');
  assert.equal(f.call(P.FUSE_GETATTR, 1, new Uint8Array(16)).error, -ENXIO, 'GETATTR of the root before binding');
  assert.equal(f.call(P.FUSE_LOOKUP, 1, str('marker')).error, -ENXIO, 'LOOKUP before binding');
  bindLateFsdev(late, `overlay,lower=${lower},upper=${upper}`, new NodeHostOs());
  assert.equal(late.bound, true);
  assert.equal(late.readOnly, false);
  const r = f.ok(P.FUSE_LOOKUP, 1, str('marker'));
  assert.equal(Number(r.dv.getBigUint64(48, true)), 'from the image\n'.length, 'the lower layer\'s file');
  f.ok(P.FUSE_MKDIR, 1, new Uint8Array([...u32(0o755, 0), ...str('made')]));
  assert.ok(fs.statSync(path.join(upper, 'made')).isDirectory(), 'a change lands in the upper layer');
  assert.ok(!fs.existsSync(path.join(lower, 'made')), 'the lower layer is never written');
});

test('binding is checked: bad options and missing directories are one-line errors that leave the share unbound; a second bind is refused', () => {
  const { late } = setup();
  const host = new NodeHostOs();
  const refused = (options: string, re: RegExp): void => {
    assert.throws(() => bindLateFsdev(late, options, host), (e: unknown) => e instanceof OptsError && re.test(e.message) && !e.message.includes('\n'), options);
    assert.equal(late.bound, false, `still unbound after '${options}'`);
  };
  refused(`overlay,lower=${path.join(tmp, 'nope')},upper=${tmp}`, /lower=.*no such directory/);
  refused(`overlay,upper=${tmp}`, /lower=DIR.* is required/);
  refused(`local,path=${tmp},id=root`, /give the fsdev's id apart/);
  refused('late', /binds a local or overlay tree/);
  refused(`local,path=${tmp},colour=blue`, /unsupported property 'colour'/);
  bindLateFsdev(late, `local,path=${tmp},readonly=on`, host);
  assert.equal(late.readOnly, true, 'a read-only local tree');
  assert.throws(() => bindLateFsdev(late, `local,path=${tmp}`, host), /fsdev 'root' is already bound/);
});

/** A VM for the QMP monitor with a late-share binder. */
class BindVm implements VmControl {
  balloon: BalloonControl | null = null;
  binds: string[] = [];
  bindFsdev: ((id: string, options: string) => void) | null = (id, options) => {
    if (id !== 'root') throw new Error(`fsdev '${id}' not found (late fsdevs: root)`);
    this.binds.push(options);
  };
  runState(): RunState { return 'running'; }
  pause(): void {}
  resume(): void {}
  powerdown(): void {}
  reset(): void {}
  quit(): void {}
}

/** Runs QMP commands on `vm` (negotiated) and returns each reply. */
function qmp(vm: VmControl): (cmd: object) => Record<string, unknown> {
  let handler: (line: string) => void = () => {};
  const replies: Record<string, unknown>[] = [];
  const conn: QmpConnection = { send: (l) => { replies.push(JSON.parse(l) as Record<string, unknown>); }, onLine: (h) => { handler = h; }, onClose: () => {}, close: () => {} };
  new QmpMonitor(vm).attach(conn);
  handler(JSON.stringify({ execute: 'qmp_capabilities' }));
  return (cmd) => { replies.length = 0; handler(JSON.stringify(cmd)); return replies[0]!; };
}

test('QMP __tsvm-fsdev-bind: reaches the binder, reports its error as GenericError, DeviceNotFound without late shares, checks its arguments', () => {
  const vm = new BindVm();
  const run = qmp(vm);
  assert.deepEqual(run({ execute: '__tsvm-fsdev-bind', arguments: { id: 'root', options: 'local,path=/srv' } }), { return: {} });
  assert.deepEqual(vm.binds, ['local,path=/srv']);
  assert.deepEqual(run({ execute: '__tsvm-fsdev-bind', arguments: { id: 'vol9', options: 'local,path=/srv' } }),
    { error: { class: 'GenericError', desc: "fsdev 'vol9' not found (late fsdevs: root)" } });
  const missing = run({ execute: '__tsvm-fsdev-bind', arguments: { id: 'root' } });
  assert.equal((missing['error'] as { class: string }).class, 'GenericError', 'options is required');
  assert.ok(run({ execute: 'query-commands' })['return'] instanceof Array);
  vm.bindFsdev = null;
  assert.equal((run({ execute: '__tsvm-fsdev-bind', arguments: { id: 'root', options: 'local,path=/srv' } })['error'] as { class: string }).class, 'DeviceNotFound');
});
