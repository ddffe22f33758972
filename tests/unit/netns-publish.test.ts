/**
 * `tsvm exec --publish` values (src/host/publish-spec.ts parsePublish):
 * Docker's `-p [HOSTADDR:]HOSTPORT:PORT` syntax, 127.0.0.1 by default.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePublish } from '../../src/host/publish-spec.js';

test('--publish: HOSTPORT:PORT publishes on 127.0.0.1; an address, [IPv6] and /tcp are accepted', () => {
  assert.deepEqual(parsePublish('8080:80'), { hostAddr: '127.0.0.1', hostPort: 8080, port: 80 });
  assert.deepEqual(parsePublish('0.0.0.0:8080:80'), { hostAddr: '0.0.0.0', hostPort: 8080, port: 80 });
  assert.deepEqual(parsePublish('[::1]:9000:8080/tcp'), { hostAddr: '::1', hostPort: 9000, port: 8080 });
  assert.deepEqual(parsePublish('localhost:1:65535'), { hostAddr: 'localhost', hostPort: 1, port: 65535 });
});

test('--publish: bad syntax gets a one-line error', () => {
  for (const bad of ['80', '', ':80', '8080:', 'a:b', '8080:0', '70000:80', '1.2.3.4:8080:80:1', '8080:80/sctp', '8080:80/udp', 'x y:1:2']) {
    const r = parsePublish(bad);
    assert.equal(typeof r, 'string', `'${bad}' is refused`);
    assert.match(r as string, /^invalid --publish '.*': /);
    assert.ok(!(r as string).includes('\n'));
  }
});
