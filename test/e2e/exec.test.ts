// End to end under a private containerd: `ctr task exec` of other modules in a
// running container's rootfs.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { e2e, GREETING, leftoversLogged, until, useSuite, E2E_TEST_TIMEOUT as T } from '../harness/index.js';

const S = useSuite('exec');

test(
  'ctr task exec runs another module with its own output and exit code',
  T,
  e2e(S, ['exec'], async (_t, s, [id]) => {
    await s.runDetached(['/probe.wasm', 'daemon', '100'], { id: id });
    const h = await s.ctr(['task', 'exec', '--exec-id', 'e1', id, '/hello.wasm']);
    assert.equal(h.code, 0, h.stderr);
    assert.equal(h.stdout, 'hello from wasm\n');
    const a = await s.ctr(['task', 'exec', '--exec-id', 'e2', id, '/probe.wasm', 'args', 'x', 'y z']);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, 'x\ny z\n');
    const x = await s.ctr(['task', 'exec', '--exec-id', 'e3', id, '/probe.wasm', 'exit', '5']);
    assert.equal(x.code, 5, x.stderr);
    const e = await s.ctr(['task', 'exec', '--exec-id', 'e4', id, '/probe.wasm', 'stderr', 'exec stderr']);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(e.stdout, '');
    assert.equal(e.stderr, 'exec stderr\n');
    const f = await s.ctr(['task', 'exec', '--exec-id', 'e5', id, '/fib.wasm', '20']);
    assert.equal(f.code, 0, f.stderr);
    assert.equal(f.stdout, '6765\n');
    const c = await s.ctr(['task', 'exec', '--exec-id', 'e6', id, '/probe.wasm', 'cat', '/data/greeting.txt']);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, `${GREETING}\n`);
    // the init process is untouched by its execs
    assert.equal((await s.tasks()).get(id)?.status, 'RUNNING');
    // an exec'd non-module is refused clearly
    const n = await s.ctr(['task', 'exec', '--exec-id', 'e7', id, '/probe.native', 'args']);
    assert.notEqual(n.code, 0);
    assert.match(n.stderr, /not a WebAssembly module/);
  }),
);

test(
  'exec writes into the rootfs; another exec and the host see it',
  T,
  e2e(S, ['rootfs'], async (_t, s, [id]) => {
    await s.runDetached(['/probe.wasm', 'daemon', '100'], { id: id });
    const w = await s.ctr([
      'task',
      'exec',
      '--exec-id',
      'w',
      id,
      '/probe.wasm',
      'write',
      '/scratch/from-exec.txt',
      'persisted',
    ]);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout, 'persisted\n');
    const r = await s.ctr(['task', 'exec', '--exec-id', 'r', id, '/probe.wasm', 'cat', '/scratch/from-exec.txt']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'persisted');
    const host = path.join(s.c.bundleDir(id), 'rootfs', 'scratch', 'from-exec.txt');
    assert.equal(fs.readFileSync(host, 'utf8'), 'persisted');
  }),
);

test(
  'exec: ps lists it, a duplicate exec id is rejected, kill by exec id',
  T,
  e2e(S, ['dup'], async (_t, s, [id]) => {
    await s.runDetached(['/probe.wasm', 'daemon', '100'], { id: id });
    const initPid = (await s.tasks()).get(id)!.pid;
    const bg = await s.ctr(['task', 'exec', '-d', '--exec-id', 'long', id, '/probe.wasm', 'sleep', '30']);
    assert.equal(bg.code, 0, bg.stderr);

    const pids = await until(
      'ctr task ps to list two processes',
      async () => {
        const ps = await s.ctrOk(['task', 'ps', id]);
        const list = ps.stdout
          .split('\n')
          .slice(1)
          .map((l) => Number(l.trim().split(/\s+/)[0]))
          .filter((n) => n > 0);
        return list.length === 2 && list;
      },
      10_000,
    );
    assert.ok(pids.includes(initPid), `init pid ${initPid} not in ${pids.join(', ')}`);
    const execPid = pids.find((p) => p !== initPid)!;
    s.childPids.add(execPid);
    assert.match(fs.readFileSync(`/proc/${execPid}/cmdline`, 'utf8'), /wasm-child/);

    const dup = await s.ctr(['task', 'exec', '--exec-id', 'long', id, '/hello.wasm']);
    assert.notEqual(dup.code, 0, 'a duplicate exec id must be rejected');
    assert.match(dup.stderr, /already exists/);

    await s.ctrOk(['task', 'kill', '--exec-id', 'long', '-s', 'SIGTERM', id]);
    await until(
      'the exec to leave ctr task ps',
      async () => {
        const ps = await s.ctrOk(['task', 'ps', id]);
        return !new RegExp(`^${execPid}\\s`, 'm').test(ps.stdout);
      },
      10_000,
    );
    assert.equal((await s.tasks()).get(id)?.status, 'RUNNING');
    await s.ctrOk(['task', 'kill', '-s', 'SIGKILL', id]);
    await s.waitStatus(id, 'STOPPED');
    const d = await s.ctrOk(['task', 'delete', id]);
    assert.match(d.stderr, /exit code 137/);
    await s.ctrOk(['container', 'delete', id]);
  }),
);

test('leaves no shim, wasm child, mount or socket behind', T, async () => {
  assert.deepEqual(await leftoversLogged(S()), []);
});
