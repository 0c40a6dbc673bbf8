// End to end under a private containerd, driven with ctr: the
// `module.wasm#export` entry syntax on a command module (probe: main plus
// exports) and on a reactor (reactor: no _start), with stdio, env and exit
// statuses; entries that cannot run fail Create with the reason.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { e2e, GREETING, leftoversLogged, useSuite, E2E_TEST_TIMEOUT as T } from '../harness/index.js';

const S = useSuite('entry');

test(
  'a command module: an export runs instead of main, with stdio and the rootfs; exit status 0',
  T,
  e2e(S, ['hello'], async (_t, s, [id]) => {
    const r = await s.run(['/probe.wasm#hello', 'ignored-arg'], { id: id });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `hello from an export\n${GREETING}\n`);
    assert.equal(r.stderr, '');
  }),
);

test(
  'a command module: proc_exit inside an export gives its status; a trap gives 134 and "wasm trap"',
  T,
  e2e(S, ['bye', 'crash'], async (_t, s, [bye, crash]) => {
    const [b, c] = await Promise.all([
      s.run(['/probe.wasm#goodbye'], { id: bye }),
      s.run(['/probe.wasm#crash'], { id: crash }),
    ]);
    assert.equal(b.code, 3, b.stderr);
    assert.equal(b.stderr, 'goodbye from an export\n');
    assert.equal(c.code, 134, c.stderr);
    assert.match(c.stderr, /wasm trap/);
  }),
);

test(
  'a command module without #export still runs main',
  T,
  e2e(S, ['main'], async (_t, s, [id]) => {
    const r = await s.run(['/probe.wasm', 'exit', '42'], { id: id });
    assert.equal(r.code, 42, r.stderr);
  }),
);

test(
  'a reactor: _initialize, then the export, with the spec env; exit statuses',
  T,
  e2e(S, ['greet', 'fail', 'rcrash'], async (_t, s, [greet, fail, crash]) => {
    const [g, f, c] = await Promise.all([
      s.run(['/reactor.wasm#greet'], { id: greet, flags: ['--env', 'WHO=ctr'] }),
      s.run(['/reactor.wasm#fail'], { id: fail }),
      s.run(['/reactor.wasm#crash'], { id: crash }),
    ]);
    assert.equal(g.code, 0, g.stderr);
    assert.equal(g.stdout, 'hello from a reactor (initialized=42)\nWHO=ctr\n');
    assert.equal(f.code, 9, f.stderr);
    assert.equal(f.stderr, 'reactor failing\n');
    assert.equal(c.code, 134, c.stderr);
  }),
);

test(
  'entries that cannot run fail with the reason: a reactor without #export, a missing export, one with parameters',
  T,
  e2e(S, ['nostart', 'noexport', 'params'], async (_t, s, [nostart, noexport, params]) => {
    const r1 = await s.run(['/reactor.wasm'], { id: nostart });
    assert.notEqual(r1.code, 0);
    assert.match(r1.stderr, /reactor\.wasm has no exported function "_start"/);
    const r2 = await s.run(['/probe.wasm#nope'], { id: noexport });
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /has no exported function "nope"/);
    const r3 = await s.run(['/probe.wasm#add'], { id: params });
    assert.notEqual(r3.code, 0);
    assert.match(r3.stderr, /export "add" takes 2 parameter\(s\); an entry point takes none/);
  }),
);

test('leaves no shim, wasm child, mount or socket behind', T, async () => {
  assert.deepEqual(await leftoversLogged(S()), []);
});
