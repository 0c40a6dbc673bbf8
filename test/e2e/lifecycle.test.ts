// End to end under a private containerd, driven with ctr: what a module sees
// (args, env, cwd, files), exit statuses, task states, kill, pause/resume,
// metrics, events and the shim socket, and that nothing is left behind.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  e2e,
  GREETING,
  IMAGE_ENV,
  leftoversLogged,
  SHIM_BIN,
  subscribeEvents,
  until,
  useSuite,
  E2E_TEST_TIMEOUT as T,
} from '../harness/index.js';

const S = useSuite('life');

test(
  'args reach the module, argv[0] is the module path',
  T,
  e2e(S, ['args'], async (_t, s, [id]) => {
    const r = await s.run(['/probe.wasm', 'args', 'one', 'two words', '', 'ünï'], { id: id });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'one\ntwo words\n\nünï\n');
    const r0 = await s.run(['/probe.wasm', 'argv0'], { id: s.id('argv0') });
    assert.equal(r0.code, 0, r0.stderr);
    assert.equal(r0.stdout, '/probe.wasm\n');
  }),
);

test(
  'env from the image and from ctr run --env reaches the module',
  T,
  e2e(S, ['env'], async (_t, s, [id]) => {
    const r = await s.run(['/probe.wasm', 'env'], { id: id, flags: ['--env', 'FOO=bar baz', '--env', 'EMPTY='] });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.ok(lines.includes('FOO=bar baz'), r.stdout);
    assert.ok(lines.includes('EMPTY='), r.stdout);
    assert.ok(lines.includes(IMAGE_ENV), r.stdout);
    assert.ok(lines.includes('PATH=/'), r.stdout);
  }),
);

// A preview1 module's cwd cannot be set by the host (wasi-libc starts at "/"
// and never reads PWD, see test/modules/probe.c); the best a host can do is
// export PWD=<process.cwd>, which `probe -P` chdirs to.
test(
  'cwd: ctr run --cwd reaches the module (as PWD)',
  T,
  e2e(
    S,
    ['cwd'],
    async (_t, s, [id]) => {
      const r = await s.run(['/probe.wasm', '-P', 'pwd'], { id: id, flags: ['--cwd', '/app'] });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'cwd=/app PWD=/app\n');
      const m = await s.run(['/probe.wasm', '-P', 'cat', 'marker.txt'], {
        id: s.id('cwdrel'),
        flags: ['--cwd', '/app'],
      });
      assert.equal(m.code, 0, m.stderr);
      assert.equal(m.stdout, 'app marker\n');
    },
    { logOnFailure: false },
  ),
);

test(
  'cwd defaults to /, relative paths resolve against the rootfs',
  T,
  e2e(S, ['cwd0'], async (_t, s, [id]) => {
    const r = await s.run(['/probe.wasm', 'cwd'], { id: id });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '/\n');
    const c = await s.run(['/probe.wasm', 'cat', 'data/greeting.txt'], { id: s.id('rel') });
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, `${GREETING}\n`);
  }),
);

test(
  'a file shipped in the image can be read',
  T,
  e2e(S, ['cat'], async (_t, s, [id]) => {
    const r = await s.run(['/probe.wasm', 'cat', '/data/greeting.txt'], { id: id });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${GREETING}\n`);
    assert.equal(r.stderr, '');
  }),
);

test(
  'the module can write into its rootfs',
  T,
  e2e(S, ['write'], async (_t, s, [id]) => {
    const r = await s.run(['/probe.wasm', 'write', '/scratch/out.txt', 'written by wasm'], { id: id });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'written by wasm\n');
    const n = await s.run(['/probe.wasm', 'write', '/new-file.txt', 'at the root'], { id: s.id('write2') });
    assert.equal(n.code, 0, n.stderr);
    assert.equal(n.stdout, 'at the root\n');
  }),
);

test(
  'exit codes 0 and 42 come back from ctr run --rm',
  T,
  e2e(S, ['exit0', 'exit42'], async (_t, s, [id0, id42]) => {
    const [r0, r42] = await Promise.all([
      s.run(['/probe.wasm', 'exit', '0'], { id: id0 }),
      s.run(['/probe.wasm', 'exit', '42'], { id: id42 }),
    ]);
    assert.equal(r0.code, 0, r0.stderr);
    assert.equal(r42.code, 42, r42.stderr);
    const h = await s.run(['/hello.wasm'], { id: s.id('hello') });
    assert.equal(h.code, 0, h.stderr);
    assert.equal(h.stdout, 'hello from wasm\n');
  }),
);

test(
  'a trap exits non-zero with "wasm trap" on stderr',
  T,
  e2e(S, ['trap'], async (_t, s, [id]) => {
    const r = await s.run(['/probe.wasm', 'trap'], { id: id });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /wasm trap/);
    assert.equal(r.stdout, '');
  }),
);

test(
  '--runtime with the absolute path of the shim works',
  T,
  e2e(S, ['abs'], async (_t, s, [id]) => {
    const r = await s.run(['/probe.wasm', 'args', 'via-abs-path'], { id: id, runtime: SHIM_BIN });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'via-abs-path\n');
  }),
);

test(
  'a missing module gives a clear error naming the path',
  T,
  e2e(S, ['missing'], async (_t, s, [id]) => {
    const r = await s.run(['/no/such/module.wasm'], { id: id });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\/no\/such\/module\.wasm/);
    assert.match(r.stderr, /not found/);
    const ls = await s.ctr(['task', 'ls', '-q']);
    assert.ok(!ls.stdout.includes(id), `failed task still listed: ${ls.stdout}`);
  }),
);

test(
  'a native ELF entrypoint gives a clear "not WebAssembly" error',
  T,
  e2e(S, ['native'], async (_t, s, [id]) => {
    const r = await s.run(['/probe.native', 'args', 'x'], { id: id });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\/probe\.native/);
    assert.match(r.stderr, /not a WebAssembly module/);
  }),
);

test(
  'task ls RUNNING/PAUSED/STOPPED, ps, pause/resume, metrics, ctr shim state',
  T,
  e2e(S, ['states'], async (_t, s, [id]) => {
    await s.runDetached(['/probe.wasm', 'daemon', '50'], { id: id });
    const running = (await s.tasks()).get(id);
    assert.equal(running?.status, 'RUNNING');
    assert.ok(running.pid > 0);
    const pid = running.pid;

    const ps = await s.ctrOk(['task', 'ps', id]);
    assert.match(ps.stdout, /^PID\s+INFO/m);
    assert.match(ps.stdout, new RegExp(`^${pid}\\s`, 'm'));

    // ctr shim talks to our socket directly (no containerd in between)
    assert.ok(fs.statSync(s.socketFor(id)).isSocket(), `no shim socket at ${s.socketFor(id)}`);
    const st = await s.ctrOk(['shim', '--id', id, 'state']);
    const state = JSON.parse(st.stdout) as { id: string; pid: number; status: number; bundle: string; stdout: string };
    assert.equal(state.id, id);
    assert.equal(state.pid, pid);
    assert.equal(state.status, 2); // RUNNING
    assert.equal(state.bundle, path.join(s.c.state, 'io.containerd.runtime.v2.task', s.c.namespace, id));
    assert.ok(state.stdout, 'stdout fifo path expected in State');

    const m = await s.ctrOk(['task', 'metrics', id]);
    const mem = Number(/^memory\.usage_in_bytes\s+(\d+)/m.exec(m.stdout)?.[1]);
    const cpu = Number(/^cpuacct\.usage\s+(\d+)/m.exec(m.stdout)?.[1]);
    assert.ok(mem > 1 << 20, `memory.usage_in_bytes should be the child's RSS:\n${m.stdout}`);
    assert.ok(cpu > 0, `cpuacct.usage should be > 0:\n${m.stdout}`);

    await s.ctrOk(['task', 'pause', id]);
    assert.equal((await s.tasks()).get(id)?.status, 'PAUSED');
    const stopped = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    assert.match(stopped.slice(stopped.lastIndexOf(')') + 2), /^T/, 'paused child should be in state T (stopped)');
    const sst = JSON.parse((await s.ctrOk(['shim', '--id', id, 'state'])).stdout) as { status: number };
    assert.equal(sst.status, 4); // PAUSED
    await s.ctrOk(['task', 'resume', id]);
    assert.equal((await s.tasks()).get(id)?.status, 'RUNNING');

    await s.ctrOk(['task', 'kill', '-s', 'SIGKILL', id]);
    await s.waitStatus(id, 'STOPPED');
    const d = await s.ctrOk(['task', 'delete', id]);
    assert.match(d.stderr, /exit code 137/);
    await s.ctrOk(['container', 'delete', id]);
  }),
);

for (const [sig, status] of [
  ['SIGTERM', 143],
  ['SIGKILL', 137],
] as const) {
  test(
    `ctr task kill -s ${sig} on a running container → task delete shows ${status}`,
    T,
    e2e(S, [sig.toLowerCase()], async (_t, s, [id]) => {
      await s.runDetached(['/probe.wasm', 'daemon', '100'], { id: id });
      assert.equal((await s.tasks()).get(id)?.status, 'RUNNING');
      // deleting a running task is refused
      const early = await s.ctr(['task', 'delete', id]);
      assert.notEqual(early.code, 0, 'delete of a running task must fail');
      await s.ctrOk(['task', 'kill', '-s', sig, id]);
      await s.waitStatus(id, 'STOPPED');
      const st = JSON.parse((await s.ctrOk(['shim', '--id', id, 'state'])).stdout) as {
        status: number;
        exit_status?: number;
      };
      assert.equal(st.status, 3); // STOPPED
      assert.equal(st.exit_status, status);
      // killing an exited task: "process already finished" (NotFound)
      const again = await s.ctr(['task', 'kill', '-s', 'SIGKILL', id]);
      assert.notEqual(again.code, 0);
      assert.match(again.stderr, /not found|already finished/i);
      const d = await s.ctrOk(['task', 'delete', id]);
      assert.match(d.stderr, new RegExp(`exit code ${status}\\b`), d.stderr);
      await s.ctrOk(['container', 'delete', id]);
    }),
  );
}

test(
  'ctr events shows /tasks/create, /tasks/start, /tasks/exit, /tasks/delete in order',
  T,
  e2e(S, ['events'], async (t, s, [id]) => {
    const out = await subscribeEvents(t, s);

    const r = await s.run(['/probe.wasm', 'exit', '7'], { id: id });
    assert.equal(r.code, 7, r.stderr);

    const mine = () =>
      out
        .text()
        .split('\n')
        .flatMap((line) => {
          const m = / (\/tasks\/[a-z-]+) (\{.*\})\s*$/.exec(line);
          if (!m) return [];
          const body = JSON.parse(m[2]) as { container_id?: string; exit_status?: number };
          return body.container_id === id ? [{ topic: m[1], body }] : [];
        });
    const got = await until(
      '/tasks/delete for the container',
      () => mine().some((e) => e.topic === '/tasks/delete') && mine(),
      10_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nctr events stdout:\n${out.text()}\nstderr:\n${out.errors()}`);
    });
    assert.deepEqual(
      got.map((e) => e.topic),
      ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete'],
      out.text(),
    );
    assert.equal(got[2].body.exit_status, 7);
    assert.equal(got[3].body.exit_status, 7);
  }),
);

test('leaves no shim, wasm child, mount or socket behind', T, async () => {
  assert.deepEqual(await leftoversLogged(S()), []);
});
