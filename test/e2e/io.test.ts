// End to end under a private containerd: the container's stdio through the
// FIFOs ctr hands to the shim.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { e2e, leftoversLogged, useSuite, E2E_TEST_TIMEOUT as T } from '../harness/index.js';

const S = useSuite('io');

test(
  'stdout and stderr arrive separately',
  T,
  e2e(S, ['out', 'err'], async (_t, s, [idOut, idErr]) => {
    const [o, e] = await Promise.all([
      s.run(['/probe.wasm', 'args', 'only on stdout'], { id: idOut }),
      s.run(['/probe.wasm', 'stderr', 'only on stderr'], { id: idErr }),
    ]);
    assert.equal(o.code, 0, o.stderr);
    assert.equal(o.stdout, 'only on stdout\n');
    assert.equal(o.stderr, '');
    assert.equal(e.code, 0, e.stderr);
    assert.equal(e.stdout, '');
    assert.equal(e.stderr, 'only on stderr\n');
  }),
);

test(
  'a line piped into ctr run reaches the module on stdin',
  T,
  e2e(S, ['stdin'], async (_t, s, [id]) => {
    // ctr 1.6 does not close the task's stdin at EOF, so the module reads one line only
    const r = await s.run(['/probe.wasm', 'stdin', 'read: '], { id: id, input: 'a line from the host\nsecond line\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'read: a line from the host\n');
  }),
);

test(
  '10 MB of stdout arrives intact',
  T,
  e2e(S, ['bigout'], async (_t, s, [id]) => {
    const MB = 10;
    const r = await s.run(['/probe.wasm', 'bigout', String(MB)], { id: id, timeoutMs: 45_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(Buffer.byteLength(r.stdout), MB * 1048576);
    const lines = MB * 16384;
    const pattern = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01';
    const parts: string[] = [];
    for (let i = 0; i < lines; i++) parts.push(`${String(i).padStart(8, '0')} ${pattern}\n`);
    const expected = parts.join('');
    if (r.stdout !== expected) {
      let i = 0;
      while (i < expected.length && r.stdout[i] === expected[i]) i++;
      assert.fail(
        `stdout differs from the pattern at byte ${i} (line ${Math.floor(i / 64)}): got ${JSON.stringify(r.stdout.slice(i, i + 80))}`,
      );
    }
  }),
);

test('leaves no shim, wasm child, mount or socket behind', T, async () => {
  assert.deepEqual(await leftoversLogged(S()), []);
});
